import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { resolveConfig } from '../../../src/config/resolve.js';
import { createTemplateClock, renderTemplate } from '../../../src/config/templates.js';
import type { BuildConfig } from '../../../src/config/types.js';

// Issue 11 items 6 and 7: the shell quoting mode either quotes a value so the shell sees it as
// one literal word, or refuses the template; a command wrapper must really run {{.Command}}.

const clock = createTemplateClock(new Date('2026-01-01T00:00:00Z'));
/** A value that runs `touch PWNED` in any context that does not quote it. */
const EVIL = `x"; touch PWNED; echo '\` $(touch PWNED) \`touch PWNED\`\ntouch PWNED\nEOF\ntouch PWNED\n`;

function run(script: string): string {
  const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
  try {
    const out = execFileSync('sh', ['-c', script], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const listing = execFileSync('ls', ['-A', dir], { encoding: 'utf8' });
    return listing.includes('PWNED') ? 'INJECTED' : out;
  } catch (error) {
    const listing = execFileSync('ls', ['-A', dir], { encoding: 'utf8' });
    return listing.includes('PWNED') ? 'INJECTED' : `failed: ${(error as Error).message.split('\n')[0]}`;
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
}

const render = (template: string, value = EVIL): string =>
  renderTemplate(template, { MountPath: value, Device: value }, clock, { quote: 'shell' });

describe('shell quoting of hostile values (issue 11 item 6)', () => {
  // Contexts the scanner accepts: the value must come back as exactly one word.
  const trimmed = EVIL.replace(/\n+$/, ''); // command substitution drops trailing newlines
  it.each([
    ['bare word', 'printf %s {{.MountPath}}', EVIL],
    ['glued to text', 'printf %s pre{{.MountPath}}post', `pre${EVIL}post`],
    ['single quotes', "printf %s '{{.MountPath}}'", EVIL],
    ['double quotes', 'printf %s "{{.MountPath}}"', EVIL],
    ['$(...) inside double quotes', 'printf %s "$(printf %s {{.MountPath}})"', trimmed],
    ['"$(dirname ...)"', 'printf %s "$(dirname {{.MountPath}})/"', './'],
    ['comment with an apostrophe before it', "# it's a comment\nprintf %s {{.MountPath}}", EVIL],
    ['after a here-document ends', "cat <<'EOF' >/dev/null\nit's text\nEOF\nprintf %s {{.MountPath}}", EVIL],
    ['nested quotes in $(...)', 'printf %s "$(printf %s "{{.MountPath}}")"', trimmed],
  ])('%s: quoted to one literal word', (_, template, expected) => {
    expect(run(render(template))).toBe(expected);
  });

  // Contexts it cannot prove: refused with a ConfigError naming the problem, never rendered.
  it.each([
    ['backticks inside double quotes', 'printf %s "`printf %s {{.MountPath}}`"', /backticks/],
    ['backticks', 'printf %s `printf %s {{.MountPath}}`', /backticks/],
    ['a comment', "# it's {{.MountPath}}", /comment/],
    ['a comment after a command', 'true # {{.MountPath}}', /comment/],
    ['an unquoted here-document', 'cat <<EOF\n{{.MountPath}}\nEOF', /here-document/],
    ['a quoted here-document', "cat <<'EOF'\n{{.MountPath}}\nEOF", /here-document/],
    ['a backslash (bare)', 'printf %s \\{{.MountPath}}', /backslash/],
    ['a backslash (double quotes)', 'printf %s "\\{{.MountPath}}"', /backslash/],
    ['a dollar sign', 'printf %s ${{.MountPath}}', /"\$"/],
    ["$'...' quoting", "printf %s $'{{.MountPath}}'", /\$'/],
    ['arithmetic', 'echo $(( {{.MountPath}} ))', /arithmetic/],
    ['${...}', 'echo ${x:-{{.MountPath}}}', /\$\{/],
    ['case inside $(...)', 'echo "$(case a in a) echo ;; esac; printf %s {{.MountPath}})"', /case/],
  ])('%s: refused', (_, template, reason) => {
    expect(() => render(template)).toThrow(ConfigError);
    expect(() => render(template)).toThrow(reason);
  });
});

describe('a command wrapper must run the command (issue 11 item 7)', () => {
  const base: BuildConfig = { amiName: 'test {{timestamp}}', sourceAmi: 'ami-0123456789abcdef0' };
  const wrapperIssues = (commandWrapper: string): string[] => {
    try {
      resolveConfig({ ...base, commandWrapper }, {});
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.issues.filter((i) => i.path === 'commandWrapper').map((i) => i.message);
    }
  };
  it.each([
    ['in a comment', 'true # {{.Command}}'],
    ['in a comment after an apostrophe', "sudo -n true # it's {{.Command}}"],
    ['echoed', 'echo {{.Command}}'],
    ['as a quoted argument', "logger '{{.Command}}'"],
    ['after exit', 'exit 0; {{.Command}}'],
    ['in a here-document', 'cat <<EOF\n{{.Command}}\nEOF'],
    ['commented out inside sh -c', "sh -c '# {{.Command}}'"],
  ])('%s: refused', (_, wrapper) => {
    expect(wrapperIssues(wrapper).join('\n')).toMatch(/never runs \{\{\.Command\}\}|comment|here-document/);
  });
  it.each([
    '{{.Command}}',
    'sudo {{.Command}}',
    "sh -c '{{.Command}}'",
    'nice -n 10 {{.Command}}',
    'bash -lc "{{.Command}}"',
  ])('%s: accepted', (wrapper) => {
    expect(wrapperIssues(wrapper)).toEqual([]);
  });
});
