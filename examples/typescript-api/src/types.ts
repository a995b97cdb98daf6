/**
 * The few shapes of API Gateway HTTP API (payload format 2.0) and Lambda this
 * example uses, written out so it needs no @types/aws-lambda.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
 */

/** The event of an HTTP API route with payload format version 2.0. */
export interface HttpApiEvent {
  readonly version: '2.0';
  /** `GET /users/{id}`, or `$default`. */
  readonly routeKey: string;
  readonly rawPath: string;
  readonly rawQueryString: string;
  readonly cookies?: readonly string[];
  /** Lower-case names; repeated headers are joined with commas. */
  readonly headers: Readonly<Record<string, string>>;
  /** Repeated parameters are joined with commas; absent when there is no query string. */
  readonly queryStringParameters?: Readonly<Record<string, string>>;
  /** Absent when the route has no path parameters. */
  readonly pathParameters?: Readonly<Record<string, string>>;
  readonly requestContext: {
    readonly accountId: string;
    readonly apiId: string;
    readonly domainName: string;
    readonly http: {
      readonly method: string;
      readonly path: string;
      readonly protocol: string;
      readonly sourceIp: string;
      readonly userAgent: string;
    };
    readonly requestId: string;
    readonly routeKey: string;
    readonly stage: string;
    readonly time: string;
    readonly timeEpoch: number;
  };
  /** Absent when the request has no body; base64 when `isBase64Encoded`. */
  readonly body?: string;
  /** True when the body's content type is not text (the gateway then sends it base64). */
  readonly isBase64Encoded: boolean;
}

/** What a handler returns for an HTTP API route. */
export interface HttpApiResult {
  readonly statusCode: number;
  readonly headers?: Readonly<Record<string, string | number | boolean>>;
  readonly cookies?: readonly string[];
  /** Text, or base64 of binary data with `isBase64Encoded: true`. */
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
}

/** The part of Lambda's Node.js context object this example uses. */
export interface LambdaContext {
  readonly awsRequestId: string;
  readonly functionName: string;
  readonly functionVersion: string;
  readonly memoryLimitInMB: string;
  getRemainingTimeInMillis(): number;
}

export type HttpApiHandler = (event: HttpApiEvent, context: LambdaContext) => Promise<HttpApiResult>;
