import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isNimbusError, type NimbusError } from '../core/index.js';
import type { CorsConfig, ServiceSpec } from '../core/index.js';
import { loadServiceConfig, parseServiceConfig, type LoadOptions } from './index.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** Strips the first newline and the common indentation, so line 1 is the first line written. */
function dedent(text: string): string {
  const lines = text.replace(/^\n/, '').split('\n');
  const indents = lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length);
  const cut = indents.length ? Math.min(...indents) : 0;
  return lines.map((l) => l.slice(cut)).join('\n');
}

/** Writes serverless.yml (and the given code files, empty) into a new temp folder; returns the config path. */
function project(yaml: string, files: readonly string[] = ['handler.js']): string {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-config-'));
  roots.push(dir);
  const file = join(dir, 'serverless.yml');
  writeFileSync(file, dedent(yaml));
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), '');
  }
  return file;
}

function load(yaml: string, options?: LoadOptions, files?: readonly string[]): { spec: ServiceSpec; file: string } {
  const file = project(yaml, files);
  return { spec: loadServiceConfig(file, options), file };
}

function failure(fn: () => unknown): NimbusError {
  try {
    fn();
  } catch (e) {
    assert.ok(isNimbusError(e), `expected a NimbusError, got ${String(e)}`);
    return e as NimbusError;
  }
  assert.fail('expected an error');
}

/** Loads `yaml` and expects `code` with exactly `message(file)`. */
function assertFails(yaml: string, code: string, message: (file: string) => string, options?: LoadOptions, files?: readonly string[]): NimbusError {
  const file = project(yaml, files);
  const err = failure(() => loadServiceConfig(file, options));
  assert.equal(err.code, code);
  assert.equal(err.message, message(file));
  return err;
}

const HEADERS = ['Content-Type', 'X-Amz-Date', 'Authorization', 'X-Api-Key', 'X-Amz-Security-Token', 'X-Amz-User-Agent', 'X-Amzn-Trace-Id'];

describe('defaults', () => {
  it('fills every default of a minimal service', () => {
    const { spec, file } = load(`
      service: shop
      provider:
        name: aws
        runtime: nodejs20.x
      functions:
        hello:
          handler: handler.hello
    `);
    const dir = dirname(file);
    assert.deepEqual(spec, {
      service: 'shop',
      configPath: file,
      dir,
      stage: 'dev',
      region: 'us-east-1',
      functions: [{
        key: 'hello',
        name: 'shop-dev-hello',
        handler: 'handler.hello',
        runtime: 'nodejs20.x',
        language: 'node',
        memorySize: 1024,
        timeout: 6,
        environment: {},
        codeDir: dir,
        service: 'shop',
        stage: 'dev',
        region: 'us-east-1',
      }],
      routes: [],
      binaryMediaTypes: [],
      schedules: [],
      queues: [],
      queueEvents: [],
      topics: [],
      topicEvents: [],
      packagePatterns: [],
      warnings: [],
    });
  });

  it('reads package.patterns in order', () => {
    const { spec } = load(`
      service: shop
      provider: { name: aws, runtime: nodejs20.x }
      package:
        patterns: ['!tests/**', 'tests/fixture.json']
      functions: { hello: { handler: handler.hello } }
    `);
    assert.deepEqual(spec.packagePatterns, ['!tests/**', 'tests/fixture.json']);
    assert.match(failure(() => load(`
      service: shop
      provider: { name: aws, runtime: nodejs20.x }
      package: { patterns: '!tests/**' }
      functions: { hello: { handler: handler.hello } }
    `)).message, /package\.patterns: not a list of strings/);
  });

  it('deep-freezes the result', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        environment:
          A: a
      functions:
        hello:
          handler: handler.hello
          events:
            - http:
                method: get
                path: a
                cors: true
    `);
    assert.equal(Object.isFrozen(spec), true);
    assert.equal(Object.isFrozen(spec.functions), true);
    assert.equal(Object.isFrozen(spec.functions[0]), true);
    assert.equal(Object.isFrozen(spec.functions[0].environment), true);
    assert.equal(Object.isFrozen(spec.routes[0]), true);
    assert.equal(Object.isFrozen(spec.routes[0].cors), true);
    assert.equal(Object.isFrozen(spec.routes[0].cors!.allowHeaders), true);
    assert.equal(Object.isFrozen(spec.warnings), true);
  });

  it('reads the v1 service form and ignores frameworkVersion, custom, org and app silently', () => {
    const { spec } = load(`
      service:
        name: legacy
      frameworkVersion: '3'
      org: acme
      app: shop
      custom:
        x: 1
      provider:
        runtime: nodejs18.x
      functions:
        a:
          handler: handler.a
    `);
    assert.equal(spec.service, 'legacy');
    assert.equal(spec.functions[0].name, 'legacy-dev-a');
    assert.deepEqual(spec.warnings, []);
  });

  it('takes the stage and region options over provider.stage and provider.region', () => {
    const yaml = `
      service: shop
      provider:
        runtime: nodejs20.x
        stage: staging
        region: eu-west-1
      functions:
        a:
          handler: handler.a
    `;
    const fromFile = load(yaml).spec;
    assert.equal(fromFile.stage, 'staging');
    assert.equal(fromFile.region, 'eu-west-1');
    assert.equal(fromFile.functions[0].name, 'shop-staging-a');
    assert.equal(fromFile.functions[0].region, 'eu-west-1');
    const fromOptions = load(yaml, { stage: 'prod', region: 'ap-south-1' }).spec;
    assert.equal(fromOptions.stage, 'prod');
    assert.equal(fromOptions.region, 'ap-south-1');
    assert.equal(fromOptions.functions[0].name, 'shop-prod-a');
    assert.equal(fromOptions.functions[0].stage, 'prod');
  });

  it('lets a function override the provider settings', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        memorySize: 512
        timeout: 10
        environment:
          SHARED: provider
          LEVEL: 1
          ON: true
      functions:
        plain:
          handler: handler.plain
          perExecutionEnvironmentMaxConcurrency: 8
        custom:
          handler: app.main
          name: my-custom-fn
          runtime: python3.12
          memorySize: 2048
          timeout: 0.5
          description: ignored without a warning
          reservedConcurrency: 5
          provisionedConcurrency: 2
          environment:
            LEVEL: function
            OWN: x
    `, undefined, ['handler.js', 'app.py']);
    const [plain, custom] = spec.functions;
    assert.equal(plain.memorySize, 512);
    assert.equal(plain.timeout, 10);
    assert.deepEqual(plain.environment, { SHARED: 'provider', LEVEL: '1', ON: 'true' });
    assert.equal(plain.reservedConcurrency, undefined);
    assert.equal('reservedConcurrency' in plain, false);
    assert.equal(plain.perExecutionEnvironmentMaxConcurrency, 8);
    assert.deepEqual(custom, {
      key: 'custom',
      name: 'my-custom-fn',
      handler: 'app.main',
      runtime: 'python3.12',
      language: 'python',
      memorySize: 2048,
      timeout: 0.5,
      environment: { SHARED: 'provider', LEVEL: 'function', ON: 'true', OWN: 'x' },
      codeDir: spec.dir,
      service: 'shop',
      stage: 'dev',
      region: 'us-east-1',
      reservedConcurrency: 5,
      provisionedConcurrency: 2,
    });
    assert.deepEqual(spec.warnings, []);
  });

  it('accepts the limits 128/10240 MB and 900 s, and numeric strings', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        memorySize: '128'
        timeout: 900
      functions:
        a:
          handler: handler.a
          memorySize: 10240
        b:
          handler: handler.a
    `);
    assert.equal(spec.functions[0].memorySize, 10240);
    assert.equal(spec.functions[0].timeout, 900);
    assert.equal(spec.functions[1].memorySize, 128);
  });

  it('reads binaryMediaTypes', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        apiGateway:
          binaryMediaTypes:
            - image/png
            - '*/*'
      functions:
        a:
          handler: handler.a
    `);
    assert.deepEqual(spec.binaryMediaTypes, ['image/png', '*/*']);
  });

  it('reads YAML merge keys', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
      x-common: &common
        handler: handler.a
        memorySize: 256
      functions:
        a:
          <<: *common
          timeout: 3
    `);
    assert.equal(spec.functions[0].handler, 'handler.a');
    assert.equal(spec.functions[0].memorySize, 256);
    assert.equal(spec.functions[0].timeout, 3);
    assert.deepEqual(spec.warnings, [`${spec.configPath}:4: x-common: unknown key (ignored)`]);
  });

  it('parses text given directly, naming the file as given', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-config-'));
    roots.push(dir);
    const file = join(dir, 'serverless.yml');
    const spec = parseServiceConfig('service: s\nprovider:\n  runtime: nodejs20.x\nplugins: [a]\nfunctions: {}\n', file);
    assert.deepEqual(spec.functions, []);
    assert.deepEqual(spec.warnings, [
      `${file}:4: plugins: not used by Nimbus yet (ignored)`,
      `${file}:5: functions: no functions defined; nothing to serve`,
    ]);
  });
});

describe('payload format version', () => {
  const withPayload = (payload: string, fnPart = ''): string => `
    service: shop
    provider:
      runtime: nodejs20.x
      httpApi:
        payload: ${payload}
    functions:
      a:
        handler: handler.a${fnPart}
        events:
          - httpApi: GET /a
          - http: GET /a
  `;

  it('defaults to 2.0 for httpApi and is always 1.0 for http', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - httpApi: GET /a
            - http: GET /a
    `);
    assert.deepEqual(spec.routes.map((r) => [r.api, r.payloadFormatVersion]), [['HTTP', '2.0'], ['REST', '1.0']]);
  });

  it("takes '1.0', '2.0', and the numbers YAML makes of 1.0 and 2.0", () => {
    assert.equal(load(withPayload("'1.0'")).spec.routes[0].payloadFormatVersion, '1.0');
    assert.equal(load(withPayload("'2.0'")).spec.routes[0].payloadFormatVersion, '2.0');
    assert.equal(load(withPayload('1.0')).spec.routes[0].payloadFormatVersion, '1.0');
    assert.equal(load(withPayload('2.0')).spec.routes[0].payloadFormatVersion, '2.0');
    assert.equal(load(withPayload('2')).spec.routes[1].payloadFormatVersion, '1.0');
  });

  it('lets functions.<key>.httpApi.payload override the provider', () => {
    const { spec } = load(withPayload("'2.0'", '\n        httpApi:\n          payload: \'1.0\''));
    assert.equal(spec.routes[0].payloadFormatVersion, '1.0');
  });

  it('refuses any other version', () => {
    assertFails(withPayload("'3.0'"), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:5: provider.httpApi.payload: not an API Gateway payload format version (got "3.0"; allowed: '1.0' or '2.0')`);
  });
});

describe('variables', () => {
  /** A `functions:` block for a template whose lines are indented by `indent` spaces. */
  const fnAt = (indent: number): string => {
    const pad = ' '.repeat(indent);
    return `functions:\n${pad}  a:\n${pad}    handler: handler.a`;
  };

  it('resolves self, sls, opt and env, embedded and whole', () => {
    const { spec } = load(`
      service: shop
      custom:
        table: \${self:service}-\${sls:stage}-table
        region: \${opt:region, 'eu-central-1'}
      provider:
        runtime: nodejs20.x
        stage: \${opt:stage, 'dev'}
        environment:
          TABLE: \${self:custom.table}
          REGION: \${self:custom.region}
          HOME_DIR: \${env:HOME_DIR}
          STAGE_AGAIN: stage=\${self:provider.stage}
      ${fnAt(6)}
    `, { stage: 'qa', env: { HOME_DIR: '/home/x' } });
    assert.deepEqual(spec.functions[0].environment, {
      TABLE: 'shop-qa-table',
      REGION: 'eu-central-1',
      HOME_DIR: '/home/x',
      STAGE_AGAIN: 'stage=qa',
    });
    assert.equal(spec.stage, 'qa');
  });

  it('uses fallbacks: quoted strings, numbers, booleans, other variables, nested variables', () => {
    const { spec } = load(`
      service: shop
      custom:
        present: here
      provider:
        runtime: nodejs20.x
        environment:
          SINGLE: \${env:NOPE, 'single'}
          DOUBLE: \${env:NOPE, "double, with comma"}
          CHAIN: \${env:NOPE, env:SECOND, 'x'}
          CHAIN_END: \${env:NOPE, env:NOPE2, 'x'}
          NESTED: \${env:NOPE, \${self:custom.present}}
          SELF_DEFAULT: \${self:custom.missing, 'd'}
          NUMBER: \${env:NOPE, 10}
          BOOL: \${env:NOPE, false}
          EMPTY: \${env:NOPE, ''}
          OPT: \${opt:stage, 'dev'}
      ${fnAt(6)}
    `, { env: { SECOND: 'second' } });
    assert.deepEqual(spec.functions[0].environment, {
      SINGLE: 'single',
      DOUBLE: 'double, with comma',
      CHAIN: 'second',
      CHAIN_END: 'x',
      NESTED: 'here',
      SELF_DEFAULT: 'd',
      NUMBER: '10',
      BOOL: 'false',
      EMPTY: '',
      OPT: 'dev',
    });
  });

  it('keeps the type of a value that is one variable', () => {
    const { spec } = load(`
      service: shop
      custom:
        env:
          A: a
          B: 2
        mem: 512
      provider:
        runtime: nodejs20.x
        timeout: \${env:T, 10}
        memorySize: \${self:custom.mem}
        environment: \${self:custom.env}
      functions:
        a:
          handler: handler.a
          timeout: \${env:FN_T, 3}
    `, { env: { FN_T: '4' } });
    assert.equal(spec.functions[0].timeout, 4);
    assert.equal(spec.functions[0].memorySize, 512);
    assert.deepEqual(spec.functions[0].environment, { A: 'a', B: '2' });
    const other = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        timeout: \${env:T, 10}
      ${fnAt(6)}
    `).spec;
    assert.equal(other.functions[0].timeout, 10);
  });

  it('resolves variables inside variables', () => {
    const { spec } = load(`
      service: shop
      custom:
        dev:
          memory: 256
        prod:
          memory: 2048
      provider:
        runtime: nodejs20.x
        memorySize: \${self:custom.\${sls:stage}.memory}
      ${fnAt(6)}
    `, { stage: 'prod' });
    assert.equal(spec.functions[0].memorySize, 2048);
  });

  it('gives the effective stage for self:provider.stage and sls:stage', () => {
    const yaml = `
      service: shop
      provider:
        runtime: nodejs20.x
        stage: beta
        environment:
          A: \${self:provider.stage}
          B: \${sls:stage}
          R: \${self:provider.region}
      ${fnAt(6)}
    `;
    assert.deepEqual(load(yaml).spec.functions[0].environment, { A: 'beta', B: 'beta', R: 'us-east-1' });
    assert.deepEqual(load(yaml, { stage: 'prod', region: 'eu-west-1' }).spec.functions[0].environment, { A: 'prod', B: 'prod', R: 'eu-west-1' });
  });

  it('gives sls:instanceId as one random string per load', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        environment:
          A: \${sls:instanceId}
          B: \${sls:instanceId}
      ${fnAt(6)}
    `);
    const env = spec.functions[0].environment;
    assert.match(env.A, /^[0-9a-f]{16}$/);
    assert.equal(env.B, env.A);
  });

  it('uses the default of an unsupported source', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        environment:
          A: \${ssm:/path/to/param, 'local'}
          B: \${file(./config.json):key, env:B}
      ${fnAt(6)}
    `, { env: { B: 'b' } });
    assert.deepEqual(spec.functions[0].environment, { A: 'local', B: 'b' });
  });

  it('leaves CloudFormation ${AWS::Region} and ${LogicalId} as written', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        environment:
          A: arn:\${AWS::Region}:\${MyBucket}/\${self:service}
      ${fnAt(6)}
    `);
    assert.equal(spec.functions[0].environment.A, 'arn:${AWS::Region}:${MyBucket}/shop');
  });

  it('does not resolve what Nimbus does not read', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        iam:
          role: \${cf:other-stack.RoleArn}
      custom:
        secret: \${ssm:/secret}
      resources:
        Resources:
          Bucket:
            Properties:
              Name: \${env:MISSING}
      ${fnAt(6)}
    `);
    assert.equal(spec.functions.length, 1);
  });

  it('fails on a variable with no value and no fallback, naming line, key path and variable', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        environment:
          TABLE: \${env:TABLE_NAME}
      ${fnAt(6)}
    `, 'NIMBUS_ERR_CONFIG_VARIABLE',
    (f) => `${f}:5: provider.environment.TABLE: cannot resolve variable \${env:TABLE_NAME}: environment variable TABLE_NAME is not set`);
  });

  it('fails on every missing part of a fallback chain', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        stage: \${opt:stage, env:STAGE}
      ${fnAt(6)}
    `, 'NIMBUS_ERR_CONFIG_VARIABLE',
    (f) => `${f}:4: provider.stage: cannot resolve variable \${opt:stage, env:STAGE}: option --stage was not given; environment variable STAGE is not set`);
  });

  it('names the key where a referenced value fails', () => {
    assertFails(`
      service: shop
      custom:
        table: \${self:custom.missing}
      provider:
        runtime: nodejs20.x
        environment:
          TABLE: x-\${self:custom.table}
      ${fnAt(6)}
    `, 'NIMBUS_ERR_CONFIG_VARIABLE',
    (f) => `${f}:3: custom.table: cannot resolve variable \${self:custom.missing}: no value at custom.missing`);
  });

  it('refuses unsupported sources without a default', () => {
    for (const [variable, source] of [['${ssm:/a/b}', 'ssm'], ['${file(./x.yml):a}', 'file'], ['${cf:stack.Out}', 'cf'], ['${aws:accountId}', 'aws'], ['${s3:bucket/key}', 's3']]) {
      assertFails(`
        service: shop
        provider:
          runtime: nodejs20.x
          environment:
            A: ${variable}
        ${fnAt(8)}
      `, 'NIMBUS_ERR_CONFIG_VARIABLE',
      (f) => `${f}:5: provider.environment.A: cannot resolve variable ${variable}: Nimbus does not support the '${source}' variable source yet`);
    }
  });

  it('refuses an unknown source even with a default', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        environment:
          A: \${foo:bar, 'x'}
      ${fnAt(6)}
    `, 'NIMBUS_ERR_CONFIG_VARIABLE',
    (f) => `${f}:5: provider.environment.A: cannot resolve variable \${foo:bar, 'x'}: unknown variable source 'foo'; Nimbus resolves self, opt, sls and env`);
  });

  it('detects reference cycles', () => {
    assertFails(`
      service: shop
      custom:
        a: \${self:custom.b}
        b: x-\${self:custom.a}
      provider:
        runtime: nodejs20.x
        environment:
          A: \${self:custom.a}
      ${fnAt(6)}
    `, 'NIMBUS_ERR_CONFIG_VARIABLE',
    (f) => `${f}:3: custom.a: cannot resolve variable \${self:custom.b}: circular reference: custom.a -> custom.b -> custom.a`);
  });

  it('detects a stage that depends on itself', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        stage: \${sls:stage}
      ${fnAt(6)}
    `, 'NIMBUS_ERR_CONFIG_VARIABLE',
    (f) => `${f}:4: provider.stage: cannot resolve variable \${sls:stage}: circular reference: provider.stage -> provider.stage`);
  });

  it('refuses a mapping inside a longer string', () => {
    assertFails(`
      service: shop
      custom:
        obj:
          a: 1
      provider:
        runtime: nodejs20.x
        environment:
          A: x-\${self:custom.obj}
      ${fnAt(6)}
    `, 'NIMBUS_ERR_CONFIG_VARIABLE',
    (f) => `${f}:8: provider.environment.A: cannot resolve variable \${self:custom.obj}: it resolves to a mapping, which cannot be part of a longer string`);
  });

  it('refuses an unterminated variable', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        environment:
          A: \${env:A
      ${fnAt(6)}
    `, 'NIMBUS_ERR_CONFIG_VARIABLE',
    (f) => `${f}:5: provider.environment.A: cannot resolve variable \${env:A: the variable has no closing }`);
  });
});

describe('errors', () => {
  it('NIMBUS_ERR_CONFIG_NOT_FOUND for a missing file', () => {
    const file = join(tmpdir(), 'nimbus-no-such-dir', 'serverless.yml');
    const err = failure(() => loadServiceConfig(file));
    assert.equal(err.code, 'NIMBUS_ERR_CONFIG_NOT_FOUND');
    assert.equal(err.message, `Cannot read ${file}: no such file`);
  });

  it('NIMBUS_ERR_CONFIG_YAML with line and column', () => {
    const err = assertFails(`
      service: shop
      provider:
        runtime: [nodejs20.x
      functions: {}
    `, 'NIMBUS_ERR_CONFIG_YAML',
    (f) => `${f}:4:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]`);
    assert.equal(err.params.line, 4);
    assert.equal(err.params.column, 1);
  });

  it('NIMBUS_ERR_CONFIG_YAML for a duplicate key', () => {
    assertFails(`
      service: shop
      service: other
    `, 'NIMBUS_ERR_CONFIG_YAML', (f) => `${f}:2:1: invalid YAML: Map keys must be unique`);
  });

  it('an empty file', () => {
    assertFails('\n# nothing here\n', 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:1: (root): the file is empty (got null; allowed: a mapping with at least service, provider and functions)`);
  });

  it('a top level that is not a mapping', () => {
    assertFails(`
      - service
      - shop
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:1: (root): the top level is not a mapping of keys (got ["service","shop"]; allowed: a mapping with at least service, provider and functions)`);
  });

  it('a missing service', () => {
    const err = assertFails(`
      provider:
        runtime: nodejs20.x
      functions: {}
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:1: service: missing: every serverless.yml names its service (got nothing; allowed: a name of letters, digits and -, starting with a letter, e.g. service: my-api)`);
    assert.equal(err.params.path, 'service');
    assert.equal(err.params.line, 1);
  });

  it('an invalid service name', () => {
    assertFails(`
      provider:
        runtime: nodejs20.x
      service: 'my shop'
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:3: service: not a valid service name (got "my shop"; allowed: a name of letters, digits and -, starting with a letter, e.g. service: my-api)`);
  });

  it('a provider other than aws', () => {
    assertFails(`
      service: shop
      provider:
        name: google
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:3: provider.name: Nimbus serves AWS Lambda functions only (got "google"; allowed: aws)`);
  });

  it('functions that is not a mapping', () => {
    assertFails(`
      service: shop
      functions:
        - hello
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:3: functions: functions is not a mapping (got ["hello"]; allowed: a mapping of function keys to their settings, e.g. functions: { hello: { handler: handler.hello } })`);
  });

  it('memory size out of range, at provider and function level', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        memorySize: 64
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:4: provider.memorySize: memory size out of range (got 64; allowed: an integer number of MB from 128 to 10240)`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        hello:
          handler: handler.hello
          memorySize: 10241
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:7: functions.hello.memorySize: memory size out of range (got 10241; allowed: an integer number of MB from 128 to 10240)`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        memorySize: 256.5
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:4: provider.memorySize: memory size out of range (got 256.5; allowed: an integer number of MB from 128 to 10240)`);
  });

  it('timeout out of range', () => {
    for (const [value, shown] of [['0', '0'], ['901', '901'], ['-1', '-1'], ['soon', '"soon"']]) {
      assertFails(`
        service: shop
        provider:
          runtime: nodejs20.x
        functions:
          hello:
            handler: handler.hello
            timeout: ${value}
      `, 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:7: functions.hello.timeout: timeout out of range (got ${shown}; allowed: a number of seconds above 0 and at most 900 (AWS itself takes whole seconds from 1 to 900))`);
    }
  });

  it('environment values and names', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        environment:
          LIST:
            - a
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:6: provider.environment.LIST: an environment value must be a string, number or boolean (got ["a"]; allowed: a string, number or boolean)`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        hello:
          handler: handler.hello
          environment:
            AWS_REGION: eu-west-1
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:8: functions.hello.environment.AWS_REGION: Lambda sets this variable itself and does not let a function set it (got "AWS_REGION"; allowed: any name but the Lambda runtime's reserved ones)`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        environment:
          1BAD: x
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:5: provider.environment.1BAD: not a valid environment variable name (got "1BAD"; allowed: a letter, then letters, digits and _)`);
  });

  it('a CloudFormation function where Nimbus needs a value', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        environment:
          BUCKET: !Ref MyBucket
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:5: provider.environment.BUCKET: uses the CloudFormation function !Ref, which Nimbus cannot evaluate (got "MyBucket"; allowed: a plain value, or a variable such as \${env:NAME})`);
  });

  it('NIMBUS_ERR_CONFIG_RUNTIME for runtimes Nimbus has no runtime for', () => {
    for (const runtime of ['java17', 'provided.al2', 'go1.x', 'nodejs', 'python2.7', 'nodejs20']) {
      const err = assertFails(`
        service: shop
        provider:
          runtime: nodejs20.x
        functions:
          hello:
            handler: handler.hello
            runtime: ${runtime}
      `, 'NIMBUS_ERR_CONFIG_RUNTIME', (f) => `${f}:7: functions.hello.runtime: runtime "${runtime}" is not supported`);
      assert.equal(err.params.path, 'functions.hello.runtime');
    }
    assertFails(`
      service: shop
      provider:
        runtime: java17
    `, 'NIMBUS_ERR_CONFIG_RUNTIME', (f) => `${f}:3: provider.runtime: runtime "java17" is not supported`);
  });

  it('no runtime at all', () => {
    assertFails(`
      service: shop
      functions:
        hello:
          handler: handler.hello
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:3: functions.hello.runtime: no runtime: set provider.runtime or functions.hello.runtime (got nothing; allowed: nodejsNN.x (e.g. nodejs20.x) or python3.NN (e.g. python3.12))`);
  });

  it('a missing, malformed or escaping handler', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        hello:
          memorySize: 256
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:5: functions.hello.handler: missing: every function needs a handler (got nothing; allowed: path/to/file.exportName relative to the serverless.yml folder, e.g. src/handler.hello)`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        hello:
          handler: src/handler
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:6: functions.hello.handler: the handler has no module or no function part (got "src/handler"; allowed: path/to/file.exportName relative to the serverless.yml folder, e.g. src/handler.hello)`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        hello:
          handler: ../outside/handler.hello
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:6: functions.hello.handler: the handler is outside the service folder (got "../outside/handler.hello"; allowed: a path inside the folder of serverless.yml)`);
  });

  it('an empty function and a bad function key', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        hello:
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:5: functions.hello: the function has no settings (got null; allowed: a mapping with at least handler, e.g. { handler: handler.hello })`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        hello.world:
          handler: handler.hello
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:6: functions.hello.world: not a valid function key (got "hello.world"; allowed: letters, digits, - and _)`);
  });

  it('concurrency settings', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        hello:
          handler: handler.hello
          reservedConcurrency: -1
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:7: functions.hello.reservedConcurrency: not a non-negative integer (got -1; allowed: an integer of 0 or more)`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        hello:
          handler: handler.hello
          reservedConcurrency: 2
          provisionedConcurrency: 3
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:8: functions.hello.provisionedConcurrency: provisioned concurrency is above the reserved concurrency (2) (got 3; allowed: an integer from 0 to 2)`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        hello:
          handler: handler.hello
          perExecutionEnvironmentMaxConcurrency: 2000
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:7: functions.hello.perExecutionEnvironmentMaxConcurrency: not an integer from 1 to 1600 (got 2000; allowed: an integer from 1 to 1600 (as Lambda Managed Instances allow))`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        hello:
          handler: handler.hello
          perExecutionEnvironmentMaxConcurrency: 2.5
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:7: functions.hello.perExecutionEnvironmentMaxConcurrency: not an integer from 1 to 1600 (got 2.5; allowed: an integer from 1 to 1600 (as Lambda Managed Instances allow))`);
    assertFails(`
      service: shop
      provider:
        runtime: python3.12
      functions:
        hello:
          handler: handler.hello
          perExecutionEnvironmentMaxConcurrency: 4
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:7: functions.hello.perExecutionEnvironmentMaxConcurrency: only Node.js functions run several invocations in one instance (python3.12 runs one per instance, in a process of its own) (got 4; allowed: 1, or remove the key)`, undefined, ['handler.py']);
  });

  it('function names: invalid, duplicate, too long', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          name: shop-b
        b:
          handler: handler.a
          name: shop-b
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:10: functions.b.name: function a has the same name (got "shop-b"; allowed: a Lambda function name used by one function only)`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          name: has space
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:7: functions.a.name: not a valid Lambda function name (got "has space"; allowed: 1 to 64 letters, digits, - and _)`);
    const key = 'k'.repeat(60);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        ${key}:
          handler: handler.a
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:6: functions.${key}: the function name shop-dev-${key} made from service, stage and key is longer than 64 characters (got "shop-dev-${key}"; allowed: a shorter key, or set functions.${key}.name)`);
  });

  it('events that are not a list of one-key mappings', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            http: GET /a
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:8: functions.a.events: events is not a list (got {"http":"GET /a"}; allowed: a list of events, e.g. [{ httpApi: "GET /hello" }])`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - http: GET /a
              httpApi: GET /a
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:8: functions.a.events[0]: an event is a mapping with one key, its type (got {"http":"GET /a","httpApi":"GET /a"}; allowed: e.g. - http: GET hello, - httpApi: GET /hello, - schedule: rate(1 minute))`);
  });

  it('bad http events', () => {
    const httpEvent = (event: string): string => `
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - ${event}
    `;
    const methods = 'GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY (any case; * = ANY)';
    const paths = "segments of letters, digits and -._~!$&'()*+,;=:@, whole-segment {param}, and {param+} as the last segment";
    assertFails(httpEvent('http: FETCH /a'), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:8: functions.a.events[0].http: not an HTTP method API Gateway routes on (got "FETCH"; allowed: ${methods})`);
    assertFails(httpEvent('http: GET'), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:8: functions.a.events[0].http: the short form of an http event is a method and a path (got "GET"; allowed: METHOD path, e.g. GET users/{id}, or { method: get, path: users/{id} })`);
    assertFails(httpEvent('http: GET /files/{path+}/meta'), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:8: functions.a.events[0].http: invalid route path: segment "{path+}": a greedy parameter {name+} must be the last segment (got "/files/{path+}/meta"; allowed: ${paths})`);
    assertFails(httpEvent('http: GET /files/file-{id}'), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:8: functions.a.events[0].http: invalid route path: segment "file-{id}": a path parameter fills a whole segment, {name} or {name+} (got "/files/file-{id}"; allowed: ${paths})`);
    assertFails(httpEvent('http: GET /a//b'), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:8: functions.a.events[0].http: invalid route path: the path has an empty segment (//) (got "/a//b"; allowed: ${paths})`);
    assertFails(httpEvent('http: GET /a/{id}/b/{id}'), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:8: functions.a.events[0].http: invalid route path: path parameter {id} appears twice (got "/a/{id}/b/{id}"; allowed: ${paths})`);
    assertFails(httpEvent('http: GET /a?x=1'), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:8: functions.a.events[0].http: invalid route path: segment "a?x=1" has a character not allowed in a path (space, ?, #, %, ...) (got "/a?x=1"; allowed: ${paths})`);
    assertFails(httpEvent('http: { method: get }'), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:8: functions.a.events[0].http.path: missing: an http event needs a path (got nothing; allowed: a path such as users/{id})`);
    assertFails(httpEvent('http: { method: fetch, path: a }'), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:8: functions.a.events[0].http.method: not an HTTP method API Gateway routes on (got "fetch"; allowed: ${methods})`);
  });

  it('bad httpApi events', () => {
    const event = (text: string): string => `
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - httpApi:
                ${text}
    `;
    assertFails(event("method: GET\n                path: '*'"), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:9: functions.a.events[0].httpApi.method: the catch-all route ($default) takes every method (got "GET"; allowed: '*', ANY, or no method)`);
    assertFails(event('path: /a'), 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:8: functions.a.events[0].httpApi.method: missing: an httpApi event needs a method (got nothing; allowed: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY or '*')`);
  });

  it('duplicate routes, whatever the parameter names', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - httpApi: GET /users/{id}
        b:
          handler: handler.a
          events:
            - http: GET /users/{id}
            - httpApi: get /users/{userId}/
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:13: functions.b.events[1].httpApi: route GET /users/{userId} is also served by functions.a.events[0].httpApi (got "GET /users/{userId}"; allowed: one function per method and path)`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - httpApi: '*'
            - httpApi:
                path: $default
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:10: functions.a.events[1].httpApi: the catch-all route $default is also served by functions.a.events[0].httpApi (got "$default"; allowed: one function per method and path)`);
  });

  it('a malformed stage option is a usage error; a malformed provider.stage a config error', () => {
    const yaml = `
      service: shop
      provider:
        runtime: nodejs20.x
        stage: 'my stage'
    `;
    assertFails(yaml, 'NIMBUS_ERR_CLI_USAGE', () => '--stage "a b": a stage name has letters, digits, - and _ (API Gateway stage name rules)', { stage: 'a b' });
    assertFails(yaml, 'NIMBUS_ERR_CONFIG_INVALID',
      (f) => `${f}:4: provider.stage: not a valid stage name (got "my stage"; allowed: a string of letters, digits, - and _ (API Gateway stage name rules))`);
  });

  it('a bad cors setting', () => {
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        httpApi:
          cors: yes-please
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:5: provider.httpApi.cors: cors is neither true/false nor a mapping (got "yes-please"; allowed: true, or { allowedOrigins, allowedHeaders, allowedMethods, allowCredentials, exposedResponseHeaders, maxAge })`);
    assertFails(`
      service: shop
      provider:
        runtime: nodejs20.x
        httpApi:
          cors:
            maxAge: 1.5
    `, 'NIMBUS_ERR_CONFIG_INVALID',
    (f) => `${f}:6: provider.httpApi.cors.maxAge: not a non-negative integer (got 1.5; allowed: an integer of 0 or more)`);
  });
});

describe('warnings', () => {
  it('one per key Nimbus does not use, in file order', () => {
    const { spec, file } = load(`
      service: shop
      plugins:
        - serverless-offline
      provider:
        name: aws
        runtime: nodejs20.x
        tags:
          team: a
        iam:
          role:
            statements: []
        logs:
          restApi: true
        deploymentBucket:
          name: b
        versionFunctions: false
        architecture: arm64
        colour: blue
        httpApi:
          name: my-api
          id: abc
          payload: '2.0'
          flavour: x
        apiGateway:
          binaryMediaTypes: ['*/*']
          minimumCompressionSize: 1024
      functions:
        hello:
          handler: handler.hello
          role: arn:aws:iam::1:role/x
          flavour: vanilla
          events:
            - http:
                method: get
                path: hello
                private: true
                authorizer: aws_iam
                surprise: 1
            - httpApi:
                method: get
                path: /hello
                authorizer:
                  name: jwt
            - schedule: rate(1 minute)
            - sqs: arn:aws:sqs:us-east-1:1:q
            - websocket: $connect
            - carrierPigeon: true
      resources:
        Resources: {}
      layers:
        x:
          path: layer
      package:
        individually: true
      outputs:
        a: 1
      useDotenv: true
      mystery: 1
    `);
    assert.deepEqual(spec.warnings, [
      `${file}:2: plugins: not used by Nimbus yet (ignored)`,
      `${file}:7: provider.tags: not used by Nimbus yet (ignored)`,
      `${file}:9: provider.iam: not used by Nimbus yet (ignored)`,
      `${file}:12: provider.logs: not used by Nimbus yet (ignored)`,
      `${file}:14: provider.deploymentBucket: not used by Nimbus yet (ignored)`,
      `${file}:16: provider.versionFunctions: not used by Nimbus yet (ignored)`,
      `${file}:17: provider.architecture: not used by Nimbus yet (ignored)`,
      `${file}:18: provider.colour: unknown key (ignored)`,
      `${file}:20: provider.httpApi.name: not used by Nimbus yet (ignored)`,
      `${file}:21: provider.httpApi.id: not used by Nimbus yet (ignored)`,
      `${file}:23: provider.httpApi.flavour: unknown key (ignored)`,
      `${file}:26: provider.apiGateway.minimumCompressionSize: not used by Nimbus yet (ignored)`,
      `${file}:30: functions.hello.role: not used by Nimbus yet (ignored)`,
      `${file}:31: functions.hello.flavour: unknown key (ignored)`,
      `${file}:36: functions.hello.events[0].http.private: not used by Nimbus yet (ignored)`,
      `${file}:37: functions.hello.events[0].http.authorizer: not used by Nimbus yet (ignored)`,
      `${file}:38: functions.hello.events[0].http.surprise: unknown key (ignored)`,
      `${file}:42: functions.hello.events[1].httpApi.authorizer: not used by Nimbus yet (ignored)`,
      `${file}:46: functions.hello.events[4]: event type 'websocket' is not served by Nimbus yet; ignored`,
      `${file}:47: functions.hello.events[5]: unknown event type 'carrierPigeon'; ignored`,
      `${file}:50: layers: not used by Nimbus yet (ignored)`,
      `${file}:54: package.individually: not used by Nimbus yet (ignored)`,
      `${file}:55: outputs: not used by Nimbus yet (ignored)`,
      `${file}:57: useDotenv: not used by Nimbus yet (ignored)`,
      `${file}:58: mystery: unknown key (ignored)`,
    ]);
    assert.deepEqual(spec.routes.map((r) => `${r.api} ${r.method} ${r.path}`), ['REST GET /hello', 'HTTP GET /hello']);
  });

  it('a service without functions is valid, with a warning', () => {
    const { spec, file } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
    `);
    assert.deepEqual(spec.functions, []);
    assert.deepEqual(spec.routes, []);
    assert.deepEqual(spec.warnings, [`${file}:1: functions: no functions defined; nothing to serve`]);
  });
});

describe('routes', () => {
  it('normalises http (REST) routes from the short and the object form', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - http: GET hello/{name}/
            - http: post /
            - http: '* proxy/{proxy+}'
            - http:
                method: any
                path: ''
            - http:
                method: Delete
                path: /items/{id}
    `);
    assert.deepEqual(spec.routes, [
      { api: 'REST', method: 'GET', path: '/hello/{name}', functionKey: 'a', payloadFormatVersion: '1.0' },
      { api: 'REST', method: 'POST', path: '/', functionKey: 'a', payloadFormatVersion: '1.0' },
      { api: 'REST', method: 'ANY', path: '/proxy/{proxy+}', functionKey: 'a', payloadFormatVersion: '1.0' },
      { api: 'REST', method: 'ANY', path: '/', functionKey: 'a', payloadFormatVersion: '1.0' },
      { api: 'REST', method: 'DELETE', path: '/items/{id}', functionKey: 'a', payloadFormatVersion: '1.0' },
    ]);
  });

  it('normalises httpApi (HTTP API) routes, the catch-all kept as $default', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - httpApi: '*'
            - httpApi: 'GET /users/'
            - httpApi: '* /any/{proxy+}'
            - httpApi:
                method: '*'
                path: /star
            - httpApi:
                method: patch
                path: users/{id}
        b:
          handler: handler.a
          events:
            - httpApi:
                method: post
                path: /b
    `);
    assert.deepEqual(spec.routes, [
      { api: 'HTTP', method: 'ANY', path: '$default', functionKey: 'a', payloadFormatVersion: '2.0' },
      { api: 'HTTP', method: 'GET', path: '/users', functionKey: 'a', payloadFormatVersion: '2.0' },
      { api: 'HTTP', method: 'ANY', path: '/any/{proxy+}', functionKey: 'a', payloadFormatVersion: '2.0' },
      { api: 'HTTP', method: 'ANY', path: '/star', functionKey: 'a', payloadFormatVersion: '2.0' },
      { api: 'HTTP', method: 'PATCH', path: '/users/{id}', functionKey: 'a', payloadFormatVersion: '2.0' },
      { api: 'HTTP', method: 'POST', path: '/b', functionKey: 'b', payloadFormatVersion: '2.0' },
    ]);
    const objectForm = load(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        c:
          handler: handler.a
          events:
            - httpApi:
                path: '*'
                method: ANY
    `).spec;
    assert.deepEqual(objectForm.routes, [{ api: 'HTTP', method: 'ANY', path: '$default', functionKey: 'c', payloadFormatVersion: '2.0' }]);
  });

  it('allows the same path on REST and HTTP APIs, and GET beside ANY', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - http: GET /x
            - httpApi: GET /x
            - httpApi: ANY /x
    `);
    assert.equal(spec.routes.length, 3);
  });
});

describe('cors', () => {
  it('http cors: true allows every origin, the default headers, OPTIONS and the method', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - http:
                method: get
                path: a
                cors: true
            - http:
                method: get
                path: b
                cors: false
    `);
    const expected: CorsConfig = { allowOrigins: ['*'], allowMethods: ['OPTIONS', 'GET'], allowHeaders: HEADERS, exposeHeaders: [], allowCredentials: false };
    assert.deepEqual(spec.routes[0].cors, expected);
    assert.equal('cors' in spec.routes[1], false);
  });

  it('http cors object maps origin(s), headers, methods, allowCredentials and maxAge', () => {
    const { spec, file } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - http:
                method: post
                path: a
                cors:
                  origins:
                    - https://a.example
                    - https://b.example
                  headers: [Content-Type, X-Custom]
                  allowCredentials: true
                  maxAge: 86400
                  cacheControl: max-age=600
            - http:
                method: put
                path: b
                cors:
                  origin: 'https://x.example, https://y.example'
                  headers: X-One
            - http:
                method: any
                path: c
                cors:
                  methods: [get]
    `);
    assert.deepEqual(spec.routes[0].cors, {
      allowOrigins: ['https://a.example', 'https://b.example'],
      allowMethods: ['OPTIONS', 'POST'],
      allowHeaders: ['Content-Type', 'X-Custom'],
      exposeHeaders: [],
      allowCredentials: true,
      maxAge: 86400,
    });
    assert.deepEqual(spec.routes[1].cors, {
      allowOrigins: ['https://x.example', 'https://y.example'],
      allowMethods: ['OPTIONS', 'PUT'],
      allowHeaders: ['X-One'],
      exposeHeaders: [],
      allowCredentials: false,
    });
    assert.deepEqual(spec.routes[2].cors, {
      allowOrigins: ['*'],
      allowMethods: ['GET', 'OPTIONS', 'DELETE', 'HEAD', 'PATCH', 'POST', 'PUT'],
      allowHeaders: HEADERS,
      exposeHeaders: [],
      allowCredentials: false,
    });
    assert.deepEqual(spec.warnings, [`${file}:18: functions.a.events[0].http.cors.cacheControl: not used by Nimbus yet (ignored)`]);
  });

  it('merges the cors of REST routes sharing a path, as one preflight', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
      functions:
        a:
          handler: handler.a
          events:
            - http:
                method: get
                path: items
                cors: true
        b:
          handler: handler.a
          events:
            - http:
                method: post
                path: /items/
                cors:
                  origin: https://a.example
                  headers: [X-Extra]
                  allowCredentials: true
                  maxAge: 60
    `);
    const merged: CorsConfig = {
      allowOrigins: ['*', 'https://a.example'],
      allowMethods: ['OPTIONS', 'GET', 'POST'],
      allowHeaders: [...HEADERS, 'X-Extra'],
      exposeHeaders: [],
      allowCredentials: true,
      maxAge: 60,
    };
    assert.deepEqual(spec.routes[0].cors, merged);
    assert.deepEqual(spec.routes[1].cors, merged);
  });

  it('provider.httpApi.cors: true fills allowMethods from the httpApi routes', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        httpApi:
          cors: true
      functions:
        a:
          handler: handler.a
          events:
            - httpApi: GET /a
            - httpApi: POST /a
            - http: PUT /rest
    `);
    assert.deepEqual(spec.httpApiCors, { allowOrigins: ['*'], allowMethods: ['OPTIONS', 'GET', 'POST'], allowHeaders: HEADERS, exposeHeaders: [], allowCredentials: false });
    assert.equal('cors' in spec.routes[0], false);
    const any = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        httpApi:
          cors: true
      functions:
        a:
          handler: handler.a
          events:
            - httpApi: '*'
    `).spec;
    assert.deepEqual(any.httpApiCors!.allowMethods, ['OPTIONS', 'GET', 'POST', 'PUT', 'PATCH', 'HEAD', 'DELETE']);
  });

  it('provider.httpApi.cors object maps to API Gateway names', () => {
    const { spec } = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        httpApi:
          cors:
            allowedOrigins:
              - https://app.example
            allowedHeaders: [Content-Type, Authorization]
            allowedMethods: [get, POST]
            allowCredentials: true
            exposedResponseHeaders: [X-Request-Id]
            maxAge: 600
      functions:
        a:
          handler: handler.a
    `);
    assert.deepEqual(spec.httpApiCors, {
      allowOrigins: ['https://app.example'],
      allowMethods: ['GET', 'POST'],
      allowHeaders: ['Content-Type', 'Authorization'],
      exposeHeaders: ['X-Request-Id'],
      allowCredentials: true,
      maxAge: 600,
    });
    const partial = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        httpApi:
          cors:
            allowedOrigins: https://one.example
      functions:
        a:
          handler: handler.a
          events:
            - httpApi: DELETE /a
    `).spec;
    assert.deepEqual(partial.httpApiCors, { allowOrigins: ['https://one.example'], allowMethods: ['OPTIONS', 'DELETE'], allowHeaders: HEADERS, exposeHeaders: [], allowCredentials: false });
    const off = load(`
      service: shop
      provider:
        runtime: nodejs20.x
        httpApi:
          cors: false
      functions:
        a:
          handler: handler.a
    `).spec;
    assert.equal('httpApiCors' in off, false);
  });
});

describe('handler files', () => {
  const nodeService = (handler: string): string => `
    service: shop
    provider:
      runtime: nodejs20.x
    functions:
      hello:
        handler: ${handler}
  `;
  const pyService = (handler: string): string => `
    service: shop
    provider:
      runtime: python3.12
    functions:
      hello:
        handler: ${handler}
  `;

  it('finds Node modules with any of the six extensions', () => {
    for (const ext of ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']) {
      const { spec } = load(nodeService('src/handlers/user.get'), undefined, [`src/handlers/user${ext}`]);
      assert.equal(spec.functions[0].handler, 'src/handlers/user.get');
    }
    // The module part stops at the first dot after the last slash: nested exports are fine.
    load(nodeService('lib.v2/api.routes.get'), undefined, ['lib.v2/api.js']);
  });

  it('names the function, the handler, the files tried and the line when a Node module is missing', () => {
    const file = project(nodeService('src/handlers/user.get'), []);
    const dir = dirname(file);
    const err = failure(() => loadServiceConfig(file));
    assert.equal(err.code, 'NIMBUS_ERR_HANDLER_NOT_FOUND');
    assert.equal(err.message,
      `Function hello: handler src/handlers/user.get: no file src/handlers/user.js, src/handlers/user.mjs, src/handlers/user.cjs, ` +
      `src/handlers/user.ts, src/handlers/user.mts, src/handlers/user.cts in ${dir} (${file}:6: functions.hello.handler)`);
    assert.equal(err.params.line, 6);
    assert.deepEqual(err.params.tried, ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'].map((e) => join(dir, `src/handlers/user${e}`)));
  });

  it('finds Python modules and packages', () => {
    assert.equal(load(pyService('src/app.handler'), undefined, ['src/app.py']).spec.functions[0].language, 'python');
    load(pyService('pkg.mod.handler'), undefined, ['pkg/mod.py']);
    load(pyService('pkg.handler'), undefined, ['pkg/__init__.py']);
  });

  it('names the files tried when a Python module is missing', () => {
    const file = project(pyService('pkg.mod.handler'), ['pkg/other.py']);
    const err = failure(() => loadServiceConfig(file));
    assert.equal(err.code, 'NIMBUS_ERR_HANDLER_NOT_FOUND');
    assert.equal(err.message, `Function hello: handler pkg.mod.handler: no file pkg/mod.py, pkg/mod/__init__.py in ${dirname(file)} (${file}:6: functions.hello.handler)`);
  });

  it('skips the check when checkHandlers is false', () => {
    const file = project(nodeService('missing.handler'), []);
    assert.equal(loadServiceConfig(file, { checkHandlers: false }).functions[0].handler, 'missing.handler');
  });
});

describe('event sources', () => {
  it('reads schedule, sqs and sns events, the queues and topics they name, and destinations', () => {
    const { spec } = load(`
      service: shop
      provider: { name: aws, runtime: nodejs20.x }
      functions:
        report:
          handler: handler.report
          events:
            - schedule: rate(1 day)
            - schedule:
                rate: [cron(0 2 * * ? *), rate(12 hours)]
                enabled: false
                input: { kind: nightly }
        worker:
          handler: handler.worker
          maximumRetryAttempts: 1
          maximumEventAge: 3600
          destinations:
            onSuccess: report
            onFailure: arn:aws:sqs:us-east-1:123456789012:failed
          events:
            - sqs: !GetAtt Orders.Arn
            - sqs:
                arn: arn:aws:sqs:us-east-1:123456789012:other
                batchSize: 5
                maximumBatchingWindow: 2
                functionResponseType: ReportBatchItemFailures
            - sns: news
            - sns: { arn: arn:aws:sns:us-east-1:123456789012:alerts, filterPolicy: { level: [high] } }
      resources:
        Resources:
          Orders:
            Type: AWS::SQS::Queue
            Properties:
              QueueName: orders
              VisibilityTimeout: 60
              RedrivePolicy: { deadLetterTargetArn: !GetAtt OrdersDlq.Arn, maxReceiveCount: 3 }
          OrdersDlq:
            Type: AWS::SQS::Queue
            Properties: { QueueName: orders-dlq }
          Table:
            Type: AWS::DynamoDB::Table
    `);
    assert.deepEqual(spec.schedules, [
      { id: 'report-schedule-1', functionKey: 'report', expression: 'rate(1 day)', enabled: true },
      { id: 'report-schedule-2', functionKey: 'report', expression: 'cron(0 2 * * ? *)', enabled: false, input: { kind: 'nightly' } },
      { id: 'report-schedule-3', functionKey: 'report', expression: 'rate(12 hours)', enabled: false, input: { kind: 'nightly' } },
    ]);
    assert.deepEqual(spec.queues.map((q) => [q.name, q.visibilityTimeout, q.deadLetterQueue ?? null, q.maxReceiveCount ?? null]).sort(), [
      ['failed', 30, null, null], ['orders', 60, 'orders-dlq', 3], ['orders-dlq', 30, null, null], ['other', 30, null, null],
    ]);
    assert.deepEqual(spec.queueEvents, [
      { functionKey: 'worker', queue: 'orders', batchSize: 10, maximumBatchingWindow: 0, reportBatchItemFailures: false, enabled: true },
      { functionKey: 'worker', queue: 'other', batchSize: 5, maximumBatchingWindow: 2, reportBatchItemFailures: true, enabled: true },
    ]);
    assert.deepEqual(spec.topics, [{ name: 'news' }, { name: 'alerts' }]);
    assert.deepEqual(spec.topicEvents, [
      { functionKey: 'worker', topic: 'news' },
      { functionKey: 'worker', topic: 'alerts', filterPolicy: { level: ['high'] } },
    ]);
    assert.deepEqual(spec.functions[1].eventInvokeConfig, {
      maximumRetryAttempts: 1, maximumEventAge: 3600,
      onSuccess: { kind: 'function', name: 'shop-dev-report' }, onFailure: { kind: 'queue', name: 'failed' },
    });
    assert.deepEqual(spec.warnings, []);
  });

  it('gives !Ref and !GetAtt of the queues and topics it makes, as CloudFormation does', () => {
    const { spec } = load(`
      service: shop
      provider:
        name: aws
        runtime: nodejs20.x
        region: eu-west-1
        environment:
          QUEUE_URL: !Ref Jobs
          QUEUE_ARN: !GetAtt Jobs.Arn
          TOPIC_ARN: { Ref: News }
      functions: { a: { handler: handler.a } }
      resources:
        Resources:
          Jobs: { Type: AWS::SQS::Queue, Properties: { QueueName: jobs } }
          News: { Type: AWS::SNS::Topic }
    `);
    assert.deepEqual(spec.functions[0].environment, {
      QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/000000000000/jobs',
      QUEUE_ARN: 'arn:aws:sqs:eu-west-1:000000000000:jobs',
      TOPIC_ARN: 'arn:aws:sns:eu-west-1:000000000000:News',
    });
  });

  it('refuses bad event settings with the key path and what is allowed', () => {
    const bad = (fn: string, re: RegExp) => assert.match(failure(() => load(`
      service: shop
      provider: { name: aws, runtime: nodejs20.x }
      functions:
        a:
          handler: handler.a
${fn.split('\n').map((l) => `          ${l}`).join('\n')}
    `)).message, re);
    bad('events: [{ schedule: every day }]', /functions\.a\.events\[0\]\.schedule: not a schedule expression/);
    bad('events: [{ schedule: "cron(0 12 * * * *)" }]', /functions\.a\.events\[0\]\.schedule: .*day-of-month and day-of-week/);
    bad('events: [{ schedule: "rate(5 minute)" }]', /functions\.a\.events\[0\]\.schedule: .*minutes/);
    bad('events: [{ sqs: { arn: arn:aws:sqs:us-east-1:1:q, batchSize: 0 } }]', /batchSize: not a batch size \(got 0; allowed: an integer from 1 to 10000\)/);
    bad('events: [{ sqs: { arn: arn:aws:sqs:us-east-1:1:q, functionResponseType: Partial } }]', /functionResponseType: not a function response type/);
    bad('maximumRetryAttempts: 3', /functions\.a\.maximumRetryAttempts: out of range \(got 3; allowed: an integer from 0 to 2\)/);
    bad('maximumEventAge: 10', /maximumEventAge: out of range/);
    bad('destinations: { onFailure: nowhere }', /destinations\.onFailure: not a function of this service nor a function, queue or topic ARN/);
  });
});
