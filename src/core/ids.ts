import { randomUUID } from 'node:crypto';

/** A Lambda-style request id (a UUID v4). */
export function newRequestId(): string {
  return randomUUID();
}

/** The account id in every ARN Nimbus makes: one platform is one account. */
export const ACCOUNT_ID = '000000000000';

/** Lambda's function name (the short form). https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html */
export const LAMBDA_FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** Lambda's alias name: not all digits, so an alias never reads as a version. https://docs.aws.amazon.com/lambda/latest/api/API_CreateAlias.html */
export const LAMBDA_ALIAS_NAME = /^(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}$/;

/** Lambda's unqualified function ARN, `arn:aws:lambda:<region>:000000000000:function:<name>`. */
export function lambdaFunctionArn(region: string, name: string): string {
  return `arn:aws:lambda:${region}:${ACCOUNT_ID}:function:${name}`;
}
