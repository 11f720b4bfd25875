import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AmiChrootError, ConfigError } from '../../../src/errors.js';
import { toAwsError } from '../../../src/aws/call.js';
import { resolveWaitPolicy } from '../../../src/aws/poll-policy.js';
import { fromPackerConfig } from '../../../src/config/packer.js';
import { resolveConfig } from '../../../src/config/resolve.js';
import { createTemplateClock, renderTemplate, shellQuote } from '../../../src/config/templates.js';
import type { BuildConfig, TemplateClock, TemplateData } from '../../../src/config/types.js';
import type { PollingConfig, WaitKind } from '../../../src/types.js';

// Issue 11 items 10 and 11: secrets never reach an error's message, JSON or inspect output,
// whatever the config's shape; bad arguments are ConfigErrors naming the argument.

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const TOKEN = `IQoJb3JpZ2luX2VjE${'Ab9+'.repeat(60)}`;
const PASSWORD = 'correct-horse-battery-staple';
const BASE = { amiName: 'test {{timestamp}}', sourceAmi: 'ami-0123456789abcdef0' };

/** Everything a user or a log could see of the error thrown by `run`. */
function exposure(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [String(error), (error as Error).message, JSON.stringify(error), inspect(error, { depth: 10 })].join('\n');
  }
  throw new Error('expected a ConfigError');
}
const leaks = (text: string): string[] =>
  [SECRET, TOKEN, PASSWORD].filter((s) => text.includes(s) || text.includes(s.slice(0, 20)));

describe('secrets are redacted by value (issue 11 item 10)', () => {
  it.each([
    ['secret_key (Packer spelling) to resolveConfig', { secret_key: SECRET }],
    ['secretAccessKey at the top level', { secretAccessKey: SECRET }],
    [
      'a session token inside a section of the wrong shape',
      { sourceAmiFilter: { sessionToken: TOKEN, owners: ['self'] } },
    ],
    ['a password in a list where an object belongs', { amiBlockDeviceMappings: { password: PASSWORD } }],
    ['a long token shortened in a message', { polling: [{ apiKey: TOKEN }] }],
    ['a secret-looking value under an ordinary key', { amiDescription: 42, description: SECRET }],
    ['a secret as a wrongly typed known option', { secretKey: 12, accessKey: SECRET }],
  ])('%s', (_, patch) => {
    expect(leaks(exposure(() => resolveConfig({ ...BASE, ...patch } as unknown as BuildConfig, {})))).toEqual([]);
  });

  it.each([
    ['secretAccessKey (camelCase) to fromPackerConfig', { secretAccessKey: SECRET }],
    ['a password in a nested block', { ami_block_device_mappings: [{ device_name: '/dev/sdb', password: PASSWORD }] }],
    ['a token in a wrong-shaped option', { aws_polling: TOKEN }],
    ['a secret in an unknown option with a value error next to it', { secret_acces_key: SECRET, root_volume_size: -1 }],
  ])('%s', (_, patch) => {
    const json = { ami_name: 'x {{timestamp}}', source_ami: 'ami-0123456789abcdef0', ...patch };
    expect(leaks(exposure(() => fromPackerConfig(json)))).toEqual([]);
  });

  it('a JSON syntax error does not quote the text', () => {
    expect(leaks(exposure(() => fromPackerConfig(`{"secret_key": "${SECRET}", "ami_name": }`)))).toEqual([]);
  });

  it('a secret user variable substituted into a bad option is not shown', () => {
    const json = { ami_name: 'x {{timestamp}}', source_ami: 'ami-0123456789abcdef0', region: '{{user `db_password`}}' };
    expect(leaks(exposure(() => fromPackerConfig(json, { variables: { db_password: PASSWORD } })))).toEqual([]);
  });

  it("an AWS error's cause keeps no raw HTTP request or response", async () => {
    const sdkError = Object.assign(new Error('You are not authorized'), {
      name: 'UnauthorizedOperation',
      $fault: 'client',
      $metadata: { httpStatusCode: 403, requestId: 'req-1' },
      $response: { statusCode: 403, headers: { 'x-amz-security-token': TOKEN } },
      $request: { headers: { 'x-amz-security-token': TOKEN, authorization: `AWS4-HMAC-SHA256 ${SECRET}` } },
    });
    const error = await toAwsError(sdkError, 'DescribeImages', { region: 'us-east-1' });
    expect(error.requestId).toBe('req-1');
    const text = [JSON.stringify(error), inspect(error, { depth: 20 }), inspect(error.cause, { depth: 20 })].join('\n');
    expect(leaks(text)).toEqual([]);
  });
});

describe('bad arguments are typed errors naming the argument (issue 11 item 11)', () => {
  const clock = createTemplateClock(new Date('2026-01-01T00:00:00Z'));
  const typed = (run: () => unknown, path: RegExp): void => {
    let thrown: unknown;
    try {
      run();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AmiChrootError);
    expect((thrown as ConfigError).issues?.map((i) => i.path).join(' ')).toMatch(path);
  };
  it.each([
    [
      'renderTemplate with null data',
      () => renderTemplate('{{.Device}}', null as unknown as TemplateData, clock),
      /^data$/,
    ],
    [
      'renderTemplate with no clock',
      () => renderTemplate('{{timestamp}}', {}, undefined as unknown as TemplateClock),
      /^clock$/,
    ],
    ['renderTemplate with a number as template', () => renderTemplate(7 as unknown as string, {}, clock), /^template$/],
    [
      'renderTemplate with a bad quote mode',
      () => renderTemplate('x', {}, clock, { quote: 'html' as 'shell' }),
      /options\.quote/,
    ],
    [
      'renderTemplate with unknown allowed names',
      () => renderTemplate('x', {}, clock, { allowed: ['Nope' as 'Device'] }),
      /options\.allowed/,
    ],
    ['createTemplateClock with an invalid date', () => createTemplateClock(new Date('2030-02-30x')), /^now$/],
    ['createTemplateClock with a string', () => createTemplateClock('2026-01-01' as unknown as Date), /^now$/],
    [
      'fromPackerConfig with a number variable',
      () => fromPackerConfig({ ami_name: 'x' }, { variables: { n: 1 as unknown as string } }),
      /options\.variables\.n/,
    ],
    [
      'fromPackerConfig with variables that are a list',
      () => fromPackerConfig({ ami_name: 'x' }, { variables: ['a'] as unknown as Record<string, string> }),
      /options\.variables/,
    ],
    [
      'fromPackerConfig with a bad escape in a user variable name',
      () => fromPackerConfig({ ami_name: '{{user "a\\q"}}', source_ami: 'ami-0123456789abcdef0' }),
      /ami_name/,
    ],
    ['resolveConfig with a null environment', () => resolveConfig(BASE, null as unknown as NodeJS.ProcessEnv), /^env$/],
    ['resolveConfig with no config', () => resolveConfig(undefined as unknown as BuildConfig, {}), /^$/],
    ['resolveWaitPolicy with an unknown kind', () => resolveWaitPolicy('nope' as WaitKind), /^kind$/],
    ['resolveWaitPolicy with a wait kind named __proto__', () => resolveWaitPolicy('__proto__' as WaitKind), /^kind$/],
    [
      'resolveWaitPolicy with polling null',
      () => resolveWaitPolicy('volumeAvailable', null as unknown as PollingConfig),
      /^polling$/,
    ],
    [
      'resolveWaitPolicy with a timeout above a timer',
      () => resolveWaitPolicy('volumeAvailable', { waits: { volumeAvailable: { timeoutMs: 2 ** 31 } } }),
      /timeoutMs/,
    ],
    ['shellQuote with a number', () => shellQuote(5 as unknown as string), /shellQuote/],
  ])('%s', (_, run, path) => {
    typed(run, path);
  });

  it('fromPackerConfig reads an env default with a bad escape as unset instead of throwing a SyntaxError', () => {
    const config = fromPackerConfig({
      variables: { v: '{{env "a\\q"}}' },
      builders: [
        {
          type: 'amazon-chroot',
          ami_name: 'x {{timestamp}}',
          source_ami: 'ami-0123456789abcdef0',
          region: '{{user `v`}}',
        },
      ],
    });
    expect(config.region).toBeUndefined();
  });
});
