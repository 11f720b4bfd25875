import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import {
  TEMPLATE_SCOPES,
  cleanResourceName,
  compileTemplate,
  createTemplateClock,
  formatGoTime,
  renderTemplate,
  shellQuote,
} from '../../../src/config/templates.js';
import type { TemplateClock, TemplateData } from '../../../src/config/types.js';

// 2024-03-05T07:08:09.123Z, a Tuesday, day 65 of a leap year.
const NOW = new Date(Date.UTC(2024, 2, 5, 7, 8, 9, 123));

function fixedClock(now = NOW): TemplateClock {
  let n = 0;
  return { now, uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}` };
}

const DATA: TemplateData = {
  BuildRegion: 'eu-central-1',
  SourceAMI: 'ami-0123456789abcdef0',
  SourceAMIName: 'debian-12 (bookworm)/amd64 ✓',
  SourceAMICreationDate: '2024-01-01T00:00:00.000Z',
  SourceAMIOwner: '136693071363',
  SourceAMIOwnerName: 'amazon',
  SourceAMITags: { os: 'debian', 'aws:team': 'platform' },
  Device: '/dev/sdf',
  MountPath: '/mnt/ami-chroot/xvdf',
  Command: 'mount /dev/sdf1 /mnt',
};

const render = (source: string, data: TemplateData = DATA, clock = fixedClock()): string =>
  renderTemplate(source, data, clock);

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('template functions', () => {
  it.each([
    ['{{timestamp}}', '1709622489'],
    ['{{ timestamp }}', '1709622489'],
    ['{{isotime}}', '2024-03-05T07:08:09Z'],
    ['{{ isotime "2006-01-02" }}', '2024-03-05'],
    ['{{ uuid }}', '00000000-0000-4000-8000-000000000001'],
    ['{{ clean_resource_name "a:b*c" }}', 'a-b-c'],
    ['{{ upper "abc" }}', 'ABC'],
    ['{{ lower "ABC" }}', 'abc'],
    ['{{ replace_all "-" "_" "a-b-c" }}', 'a_b_c'],
    ['{{ replace "-" "_" 1 "a-b-c" }}', 'a_b-c'],
    ['{{ replace "-" "_" -1 "a-b-c" }}', 'a_b_c'],
    ['{{ index .SourceAMITags "aws:team" }}', 'platform'],
  ])('%s renders %s', (source, expected) => {
    expect(render(source)).toBe(expected);
  });

  it('clean_resource_name keeps the characters AMI names allow and replaces every other byte', () => {
    expect(cleanResourceName("Az09()[] ./-'@_")).toBe("Az09()[] ./-'@_");
    expect(cleanResourceName('a:b,c=d')).toBe('a-b-c-d');
    // Byte-wise, as Packer: "✓" is three UTF-8 bytes.
    expect(cleanResourceName('x✓y')).toBe('x---y');
  });

  it('uuid draws a new value per use from the clock', () => {
    expect(render('{{uuid}} {{uuid}}')).toBe(
      '00000000-0000-4000-8000-000000000001 00000000-0000-4000-8000-000000000002',
    );
    expect(createTemplateClock().uuid()).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });
});

describe('isotime with Go layouts', () => {
  it.each([
    ['2006-01-02T15:04:05Z07:00', '2024-03-05T07:08:09Z'],
    ['20060102150405', '20240305070809'],
    ['Jan _2 15:04:05', 'Mar  5 07:08:09'],
    ['Monday, 02-Jan-06 15:04:05 MST', 'Tuesday, 05-Mar-24 07:08:09 UTC'],
    ['Mon Jan 2 3:4:5 PM', 'Tue Mar 5 7:8:9 AM'],
    ['January 2, 2006 03:04pm', 'March 5, 2024 07:08am'],
    ['2006-01-02 15:04:05.000', '2024-03-05 07:08:09.123'],
    ['15:04:05.000000', '07:08:09.123000'],
    ['15:04:05.999', '07:08:09.123'],
    ['15:04:05,000', '07:08:09,123'],
    ['2006-002', '2024-065'],
    ['-0700 -07:00 -07 Z0700', '+0000 +00:00 +00 Z'],
    ['1/2/06', '3/5/24'],
    ['_2006', '_2024'],
    ['literal text', 'literal text'],
  ])('%s', (layout, expected) => {
    expect(formatGoTime(NOW, layout)).toBe(expected);
    expect(render(`{{ isotime ${JSON.stringify(layout)} }}`)).toBe(expected);
  });

  it('drops the fraction for .999 layouts when it is zero', () => {
    expect(formatGoTime(new Date(Date.UTC(2024, 0, 1, 0, 0, 0, 0)), '05.999')).toBe('00');
  });

  it('uses 12 for noon and midnight in 12-hour layouts', () => {
    expect(formatGoTime(new Date(Date.UTC(2024, 0, 1, 12, 0, 0)), '3PM')).toBe('12PM');
    expect(formatGoTime(new Date(Date.UTC(2024, 0, 1, 0, 0, 0)), '03pm')).toBe('12am');
  });
});

describe('variables and pipes', () => {
  it('reads build data and one source AMI tag', () => {
    expect(
      render('{{.BuildRegion}} {{ .SourceAMI }} {{.SourceAMIOwner}}/{{.SourceAMIOwnerName}} {{.SourceAMITags.os}}'),
    ).toBe('eu-central-1 ami-0123456789abcdef0 136693071363/amazon debian');
  });

  it('renders absent data, missing tags and prototype names as the empty string', () => {
    expect(
      render(
        '[{{.SourceAMIName}}][{{.SourceAMITags.missing}}][{{.SourceAMITags.constructor}}][{{.SourceAMITags.__proto__}}]',
        {},
      ),
    ).toBe('[][][][]');
  });

  it('pipes a value through functions, left to right, as the last argument', () => {
    expect(render('{{ .SourceAMIName | clean_resource_name }}')).toBe('debian-12 (bookworm)/amd64 ---');
    expect(render('{{ .SourceAMIName | replace_all " " "_" | upper }}')).toBe('DEBIAN-12_(BOOKWORM)/AMD64_✓');
    expect(render('{{ timestamp | clean_resource_name }}')).toBe('1709622489');
    expect(render('{{ isotime "2006-01-02 15:04" | clean_resource_name }}')).toBe('2024-03-05 07-08');
  });

  it('keeps timestamp one value for a whole build, across templates and renders', () => {
    const clock = createTemplateClock(new Date(1_700_000_000_000));
    const name = compileTemplate('ami {{timestamp}}', { path: 'amiName', allowed: TEMPLATE_SCOPES.buildData });
    const tag = compileTemplate('{{isotime "20060102150405"}}-{{timestamp}}', {
      path: 'tags.Built',
      allowed: TEMPLATE_SCOPES.buildData,
    });
    const first = name.render(DATA, clock);
    expect(name.render(DATA, clock)).toBe(first);
    expect(first).toBe('ami 1700000000');
    expect(tag.render(DATA, clock)).toBe('20231114221320-1700000000');
  });

  it('supports Go trim markers and comments', () => {
    expect(render('a  {{- .BuildRegion -}}  b')).toBe('aeu-central-1b');
    expect(render('x{{/* a comment */}}y')).toBe('xy');
    expect(render('x {{- /* trimmed */ -}} y')).toBe('xy');
    expect(render('{{ "}}" }}')).toBe('}}');
    expect(render('{{ `raw \\n` }}|{{ "esc\\t\\u00e9\\x41" }}')).toBe('raw \\n|esc\té' + 'A');
  });

  it('takes a function of the same data, which gets a frozen copy', () => {
    const seen: TemplateData[] = [];
    const out = renderTemplate(
      (d) => {
        seen.push(d);
        return `${d.SourceAMITags?.os}-${d.BuildRegion}`;
      },
      DATA,
      fixedClock(),
    );
    expect(out).toBe('debian-eu-central-1');
    expect(Object.isFrozen(seen[0])).toBe(true);
    expect(Object.isFrozen(seen[0]!.SourceAMITags)).toBe(true);
  });

  it('rejects what a template function returns or throws with the option path', () => {
    const wrong = compileTemplate((() => 42) as never, { path: 'tags.Name', allowed: TEMPLATE_SCOPES.buildData });
    expect(configError(() => wrong.render(DATA, fixedClock())).issues[0]).toMatchObject({
      path: 'tags.Name',
      value: 42,
    });
    const boom = new Error('boom');
    const throwing = compileTemplate(
      () => {
        throw boom;
      },
      { path: 'amiDescription', allowed: TEMPLATE_SCOPES.buildData },
    );
    const error = configError(() => throwing.render(DATA, fixedClock()));
    expect(error.cause).toBe(boom);
    expect(error.issues[0]!.message).toContain('boom');
  });

  it('checks the rendered value when the option has a rule', () => {
    const name = compileTemplate('{{.SourceAMIName}}', {
      path: 'amiName',
      allowed: TEMPLATE_SCOPES.buildData,
      check: (v) => (v.includes('✓') ? 'has a check mark; use clean_resource_name' : undefined),
    });
    const error = configError(() => name.render(DATA, fixedClock()));
    expect(error.issues[0]).toMatchObject({ path: 'amiName', value: DATA.SourceAMIName });
    expect(error.issues[0]!.message).toContain('clean_resource_name');
  });
});

describe('variables allowed per option', () => {
  it.each([
    ['mountPath', '/mnt/{{.Device}}', TEMPLATE_SCOPES.mountPath],
    ['preMountCommands.0', 'mkfs {{.Device}}1', TEMPLATE_SCOPES.preMountCommands],
    ['postMountCommands.0', 'ls {{.MountPath}} {{.Device}}', TEMPLATE_SCOPES.postMountCommands],
    ['commandWrapper', 'sudo {{.Command}}', TEMPLATE_SCOPES.commandWrapper],
    ['tags.Name', '{{.SourceAMIName}} {{.SourceAMITags.os}} {{.BuildRegion}}', TEMPLATE_SCOPES.buildData],
  ])('%s accepts its own data', (path, source, allowed) => {
    expect(() => compileTemplate(source, { path, allowed })).not.toThrow();
  });

  it.each([
    ['mountPath', '/mnt/{{.MountPath}}', TEMPLATE_SCOPES.mountPath, '.MountPath is not available in mountPath'],
    ['preMountCommands.0', 'ls {{.MountPath}}', TEMPLATE_SCOPES.preMountCommands, 'available here: .Device'],
    ['commandWrapper', 'sudo {{.Device}}', TEMPLATE_SCOPES.commandWrapper, 'available here: .Command'],
    ['tags.Name', '{{.Device}}', TEMPLATE_SCOPES.buildData, '.Device is not available in tags.Name'],
    ['tags.Name', '{{.SourceAmiName}}', TEMPLATE_SCOPES.buildData, 'did you mean .SourceAMIName?'],
  ])('%s rejects %s', (path, source, allowed, message) => {
    const error = configError(() => compileTemplate(source, { path, allowed }));
    expect(error.issues[0]).toMatchObject({ path, value: source });
    expect(error.issues[0]!.message).toContain(message);
  });
});

describe('a template can never run code', () => {
  it.each([
    ['{{ process.exit() }}', 'parentheses are not supported'],
    ['{{ .Device; }}', 'unexpected character ";"'],
    ['{{ constructor }}', 'unknown function "constructor"'],
    ['{{ .__proto__ }}', 'unknown variable .__proto__'],
    ['{{ .constructor.name }}', 'unknown variable .constructor'],
    ['{{ printf "%s" .Device }}', 'unknown function "printf"'],
    ['{{ env "HOME" }}', 'env is only allowed in Packer variables'],
    ['{{ user `x` }}', 'user variables must be resolved'],
    ['{{ if .Device }}x{{ end }}', 'control structures'],
    ['{{ $x := 1 }}', 'template variables ($x) are not supported'],
    ['{{ .Device', 'unclosed action'],
    ['.Device }}', '"}}" without a matching "{{"'],
    ['{{ {{ .Device }} }}', 'nested "{{"'],
    ['{{}}', 'empty action'],
    ['{{ .Device | }}', 'missing command after "|"'],
    ['{{ .BuildRegion | .SourceAMI }}', 'must be a function'],
    ['{{ "a" "b" }}', 'takes no arguments'],
    ['{{ upper }}', 'upper takes 1 argument, got 0'],
    ['{{ clean_resource_name timestamp }}', 'use a pipe'],
    ['{{ isotime 2006 }}', 'needs a string'],
    ['{{ .SourceAMITags }}', '.SourceAMITags is a map'],
    ['{{ .SourceAMITags.a.b }}', 'one level of keys'],
    ['{{ "unterminated }}', 'unterminated string'],
    ['{{ 1.5 }}', 'only decimal integers'],
    ['{{ `a` | constructor }}', 'unknown function "constructor"'],
    ['{{ /* not first */ }}', 'unexpected character "/"'],
    ['{{/* open', 'unclosed comment'],
    ['{{ "\\q" }}', 'unknown escape sequence'],
    ['{{ this }}', 'unknown function "this"'],
    ['{{ globalThis }}', 'unknown function "globalThis"'],
    ['{{ it.a(0) }}', 'parentheses are not supported'],
  ])('%s is a config error', (source, message) => {
    const error = configError(() =>
      compileTemplate(source, { path: 'amiDescription', allowed: TEMPLATE_SCOPES.buildData }),
    );
    const problem = error.issues[0]!;
    expect(problem.path).toBe('amiDescription');
    expect(problem.value).toBe(source);
    expect(problem.message).toContain(message);
    expect(problem.message).toMatch(/at position \d+ of template/);
    expect(problem.message).toContain(JSON.stringify(source));
  });

  it('names the position of the problem', () => {
    const error = configError(() => compileTemplate('ok {{ .Device; }}', { path: 'mountPath', allowed: ['Device'] }));
    expect(error.issues[0]!.message).toContain('at position 14');
  });

  it.each([
    '<%= process.exit() %>',
    '<%~ it %><% globalThis.__pwned = 1 %>',
    '{% globalThis.__pwned = 1 %}{%~ it %}{%= 1 %}',
    '${process.exit()} `${globalThis.__pwned = 1}`',
    "' + (globalThis.__pwned = 1) + '",
    'back\\slash \\n quote\' "double" \r\nCRLF\rCR { } %',
    '%} {%- -%} <%_ _%>',
  ])('literal text %j renders verbatim and is never evaluated', (literal) => {
    const source = `${literal}{{ .Device }}${literal}`;
    const out = render(source);
    expect(out).toBe(`${literal}/dev/sdf${literal}`);
    expect((globalThis as Record<string, unknown>).__pwned).toBeUndefined();
  });

  it('passes data values through without evaluating them', () => {
    const hostile: TemplateData = { SourceAMIName: '<%= process.exit() %>{{ .Device }}${1+1}{% x %}' };
    expect(render('{{.SourceAMIName}}', hostile)).toBe(hostile.SourceAMIName);
  });
});

describe('shell quoting', () => {
  const HOSTILE = `it's "quoted" $HOME \`id\` $(id) \\ ; & | *`;

  /** Runs a rendered command with /bin/sh and returns what it printed. */
  const sh = (command: string): string =>
    execFileSync('/bin/sh', ['-c', command], {
      encoding: 'utf8',
      env: { HOME: '/nonexistent', PATH: process.env.PATH },
    });

  it('quotes values with single quotes and leaves safe values and empty strings readable', () => {
    expect(shellQuote('/dev/sdf1')).toBe('/dev/sdf1');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('$HOME `id`')).toBe("'$HOME `id`'");
  });

  it.each([
    ['unquoted', "printf '%s' {{.MountPath}}"],
    ['single quotes', "printf '%s' '{{.MountPath}}'"],
    ['double quotes', `printf '%s' "{{.MountPath}}"`],
    ['glued to text', "printf '%s' x{{.MountPath}}y"],
  ])('a value %s reaches the command unchanged, not expanded', (where, source) => {
    const t = compileTemplate(source, {
      path: 'postMountCommands.0',
      allowed: TEMPLATE_SCOPES.postMountCommands,
      quote: 'shell',
    });
    const out = sh(t.render({ MountPath: HOSTILE }, fixedClock()));
    expect(out).toBe(where === 'glued to text' ? `x${HOSTILE}y` : HOSTILE);
  });

  it('does not quote literal text, so the command keeps its own syntax', () => {
    const t = compileTemplate('mkfs.ext4 {{.Device}}1 && echo "$((1+1))"', {
      path: 'preMountCommands.0',
      allowed: ['Device'],
      quote: 'shell',
    });
    expect(t.render({ Device: '/dev/sdf' }, fixedClock())).toBe('mkfs.ext4 /dev/sdf1 && echo "$((1+1))"');
  });

  it('inserts .Command as is where it stands unquoted, and escapes it inside quotes', () => {
    const command = `printf '%s|' "a b" '$HOME'`;
    const plain = compileTemplate('env {{.Command}}', { path: 'commandWrapper', allowed: ['Command'], quote: 'shell' });
    expect(plain.render({ Command: command }, fixedClock())).toBe(`env ${command}`);
    expect(sh(plain.render({ Command: command }, fixedClock()))).toBe('a b|$HOME|');
    const nested = compileTemplate("sh -c '{{.Command}}'", {
      path: 'commandWrapper',
      allowed: ['Command'],
      quote: 'shell',
    });
    expect(sh(nested.render({ Command: command }, fixedClock()))).toBe('a b|$HOME|');
  });

  it('leaves values alone in options that are not shell commands', () => {
    expect(render('{{.SourceAMIName}}', { SourceAMIName: HOSTILE })).toBe(HOSTILE);
  });
});

describe('renderTemplate', () => {
  it('renders a compiled template from a resolved config', () => {
    const t = compileTemplate('{{.BuildRegion}}', { path: 'tags.R', allowed: TEMPLATE_SCOPES.buildData });
    expect(renderTemplate(t, { BuildRegion: 'us-east-1' }, fixedClock())).toBe('us-east-1');
  });

  it('restricts the data names when asked, and quotes for the shell when asked', () => {
    expect(() => renderTemplate('{{.Device}}', DATA, fixedClock(), { allowed: ['Command'] })).toThrow(ConfigError);
    expect(renderTemplate('ls {{.MountPath}}', { MountPath: 'a b' }, fixedClock(), { quote: 'shell' })).toBe(
      "ls 'a b'",
    );
  });

  it('copies the clock time, so later changes to the Date do not leak in', () => {
    const date = new Date(NOW.getTime());
    const clock = createTemplateClock(date);
    date.setTime(0);
    expect(renderTemplate('{{timestamp}}', {}, clock)).toBe('1709622489');
  });
});
