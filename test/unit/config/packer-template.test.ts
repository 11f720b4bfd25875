import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { evaluateHcl } from '../../../src/config/packer/hcl-expr.js';
import type { HclScope } from '../../../src/config/packer/hcl-expr.js';
import { writePackerManifest } from '../../../src/config/packer/provisioners.js';
import { loadPackerTemplate } from '../../../src/config/packer/template.js';
import type { LoadPackerTemplateOptions } from '../../../src/config/packer/types.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ami-chroot-packer-unit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const NOW = new Date('2026-03-04T05:06:07Z');
const scope = (extra: Partial<HclScope> = {}): HclScope => ({ now: NOW, cwd: '/', ...extra });

async function load(name: string, text: string, options: LoadPackerTemplateOptions = {}) {
  const file = join(dir, name);
  await writeFile(file, text);
  return loadPackerTemplate(file, { env: {}, now: NOW, ...options });
}

async function problems(name: string, text: string, options: LoadPackerTemplateOptions = {}): Promise<string[]> {
  const error = await load(name, text, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).issues.map((i) => `${i.path.replace(`${dir}/`, '')}: ${i.message}`);
}

const SOURCE = (body = '') => `
source "amazon-chroot" "a" {
  source_ami = "ami-12345678"
  ami_name   = "name-{{timestamp}}"
${body}
}
`;

describe('HCL2 expressions', () => {
  it('evaluates operators, conditionals, for expressions, references and functions', () => {
    const s = scope({ var: { n: 3, list: ['a', 'b'], m: { k: 'v' } } });
    expect(evaluateHcl('${var.n * 2 + 1 > 6 && !false ? "big" : "small"}', s)).toBe('big');
    expect(evaluateHcl('${[for x in var.list : upper(x) if x != "b"]}', s)).toEqual(['A']);
    expect(evaluateHcl('${var.m["k"]}-${var.list[1]}', s)).toBe('v-b');
    expect(evaluateHcl('${format("%s-%03d", join(",", var.list), var.n)}', s)).toBe('a,b-003');
    expect(evaluateHcl('${formatdate("YYYY-MM-DD hh:mm", timestamp())}', s)).toBe('2026-03-04 05:06');
    expect(evaluateHcl('${regex("^ami-([0-9a-f]+)$", "ami-12ab")}', s)).toEqual(['12ab']);
    expect(evaluateHcl('${can(regex("^x", "y"))}', s)).toBe(false);
    expect(evaluateHcl('${lookup(var.m, "nope", "dflt")}', s)).toBe('dflt');
    expect(evaluateHcl('$${HOME} stays {{timestamp}}', s)).toBe('${HOME} stays {{timestamp}}');
    // A whole-string interpolation keeps the value's type.
    expect(evaluateHcl('${var.list}', s)).toEqual(['a', 'b']);
  });

  it('refuses, by name, what it does not run', () => {
    expect(() => evaluateHcl('${vault("/secret", "k")}', scope())).toThrow(
      /vault\(\) is not supported: it reads secrets from Vault/,
    );
    expect(() => evaluateHcl('${frob(1)}', scope())).toThrow(/frob\(\) is unknown or not supported; supported: abs/);
    expect(() => evaluateHcl('%{ if true }x%{ endif }', scope())).toThrow(/template directives/);
    expect(() => evaluateHcl('${env("HOME")}', scope())).toThrow(/env\(\) can be used only in a variable default/);
    expect(() => evaluateHcl('${var.list[*]}', scope({ var: { list: [] } }))).toThrow(/splat/);
  });
});

describe('loadPackerTemplate: HCL2', () => {
  it('applies default < PKR_VAR_ < var files and -var in command-line order, converting types', async () => {
    const text = `
variable "size" {
  type    = number
  default = 8
}
variable "region" { default = "us-east-1" }
variable "users" {
  type    = list(string)
  default = []
}
${SOURCE('  root_volume_size = var.size\n  region = var.region\n  ami_users = var.users')}
build { sources = ["source.amazon-chroot.a"] }
`;
    await writeFile(join(dir, 'one.pkrvars.hcl'), 'size = 20\nusers = ["111122223333"]\n');
    await writeFile(join(dir, 'two.json'), JSON.stringify({ size: 30 }));
    const t = await load('t.pkr.hcl', text, {
      env: { PKR_VAR_region: 'eu-west-1', PKR_VAR_size: '10' },
      variables: [
        { file: join(dir, 'one.pkrvars.hcl') },
        { name: 'size', value: '25' },
        { file: join(dir, 'two.json') },
      ],
    });
    expect(t.format).toBe('hcl2');
    expect(t.builds[0]!.config).toMatchObject({ rootVolumeSize: 30, region: 'eu-west-1', amiUsers: ['111122223333'] });
    const t2 = await load('t.pkr.hcl', text, {
      variables: [{ file: join(dir, 'two.json') }, { name: 'size', value: '25' }],
    });
    expect(t2.builds[0]!.config.rootVolumeSize).toBe(25);
  });

  it('evaluates locals in any order, env() only in defaults, and reports cycles with their line', async () => {
    const t = await load(
      't.pkr.hcl',
      `variable "who" { default = env("WHO") }
locals {
  name = "\${local.prefix}-\${var.who}"
  prefix = "app"
}
${SOURCE('  ami_description = local.name')}
build { sources = ["source.amazon-chroot.a"] }`,
      { env: { WHO: 'me' } },
    );
    expect(t.builds[0]!.config.amiDescription).toBe('app-me');
    const p = await problems(
      'c.pkr.hcl',
      `locals {\n  a = local.b\n  b = local.a\n}\n${SOURCE()}\nbuild { sources = ["source.amazon-chroot.a"] }`,
    );
    expect(p[0]).toMatch(/^c\.pkr\.hcl:2: local "a": local\.a refers to itself through a -> b/);
  });

  it('keeps provisioners in template order across types, with their lines, and honours only/except', async () => {
    const t = await load(
      't.pkr.hcl',
      `${SOURCE()}
source "amazon-chroot" "b" {
  source_ami = "ami-12345678"
  ami_name = "b-{{timestamp}}"
}
build {
  sources = ["source.amazon-chroot.a", "source.amazon-chroot.b"]
  provisioner "shell" {
    inline = ["one"]
  }
  provisioner "file" {
    content = "two"
    destination = "/two"
  }
  provisioner "shell" {
    only = ["amazon-chroot.b"]
    inline = ["three"]
  }
  provisioner "shell-local" {
    except = ["source.amazon-chroot.b"]
    inline = ["four"]
  }
}`,
    );
    const steps = (name: string) =>
      t.builds.find((b) => b.name === name)!.provisioners.map((p) => `${p.type}@${p.location.replace(`${dir}/`, '')}`);
    expect(steps('amazon-chroot.a')).toEqual(['shell@t.pkr.hcl:14', 'file@t.pkr.hcl:17', 'shell-local@t.pkr.hcl:25']);
    expect(steps('amazon-chroot.b')).toEqual(['shell@t.pkr.hcl:14', 'file@t.pkr.hcl:17', 'shell@t.pkr.hcl:21']);
    const only = await load('t.pkr.hcl', await readFile(join(dir, 't.pkr.hcl'), 'utf8'), { only: ['*.b'] });
    expect(only.builds.map((b) => b.name)).toEqual(['amazon-chroot.b']);
  });

  it('evaluates build.* in provisioners at provision time', async () => {
    const t = await load(
      't.pkr.hcl',
      `${SOURCE()}\nbuild {\n  sources = ["source.amazon-chroot.a"]\n  provisioner "shell" {\n    inline = ["echo \${build.SourceAMIName} \${source.name}"]\n  }\n}`,
    );
    expect(t.builds[0]!.provisioners[0]!.settings({ SourceAMIName: 'debian-12' })).toEqual({
      inline: ['echo debian-12 a'],
    });
  });

  it('reads HCL2 JSON (.pkr.json) and reports a type mismatch with the variable line', async () => {
    const t = await load(
      't.pkr.json',
      JSON.stringify(
        {
          variable: { size: { type: 'number', default: 9 } },
          source: {
            'amazon-chroot': {
              j: { source_ami: 'ami-12345678', ami_name: 'j-{{timestamp}}', root_volume_size: '${var.size}' },
            },
          },
          build: { sources: ['source.amazon-chroot.j'], provisioner: [{ shell: { inline: ['x'] } }] },
        },
        null,
        2,
      ),
    );
    expect(t.format).toBe('hcl2-json');
    expect(t.builds[0]!.config.rootVolumeSize).toBe(9);
    const p = await problems(
      'v.pkr.hcl',
      `variable "size" {\n  type = number\n  default = "big"\n}\n${SOURCE()}\nbuild { sources = ["source.amazon-chroot.a"] }`,
    );
    expect(p).toEqual(['v.pkr.hcl:1: variable "size": must be number, got "big"']);
  });

  it('collects sensitive values for redaction', async () => {
    const t = await load(
      't.pkr.hcl',
      `variable "key" {\n  sensitive = true\n  default = "s3cr3t-value"\n}\n${SOURCE('  ami_description = var.key')}\nbuild { sources = ["source.amazon-chroot.a"] }`,
    );
    expect(t.sensitiveValues).toEqual(['s3cr3t-value']);
  });

  it('refuses data sources and other top-level blocks by name', async () => {
    const p = await problems(
      'd.pkr.hcl',
      `data "amazon-ami" "x" {\n  owners = ["self"]\n}\n${SOURCE()}\nbuild { sources = ["source.amazon-chroot.a"] }`,
    );
    expect(p).toEqual([
      'd.pkr.hcl:1: data sources are not supported; select the source AMI with source_ami_filter in the amazon-chroot source',
    ]);
  });
});

describe('loadPackerTemplate: legacy JSON', () => {
  const template = (builders: unknown[], provisioners: unknown[] = []) =>
    JSON.stringify({ variables: { greeting: 'hi' }, builders, provisioners }, null, 2);
  const CHROOT = { type: 'amazon-chroot', source_ami: 'ami-12345678', ami_name: 'l-{{timestamp}}' };

  it('names other builder types, unless -except leaves them out', async () => {
    const text = template([CHROOT, { type: 'amazon-ebs', name: 'ebs' }]);
    const p = await problems('l.json', text);
    expect(p).toEqual([
      'l.json:12: builder "ebs" of type "amazon-ebs" is not supported: ami-chroot builds only amazon-chroot; remove it, or exclude it with --except ebs',
    ]);
    const t = await load('l.json', text, { except: ['ebs'] });
    expect(t.builds.map((b) => b.name)).toEqual(['amazon-chroot']);
  });

  it('renders user variables in provisioners and refuses undefined ones', async () => {
    const t = await load(
      'l.json',
      template([CHROOT], [{ type: 'shell', inline: ['echo {{user `greeting`}} {{build_name}}'] }]),
      {
        variables: [{ name: 'greeting', value: 'hello' }],
      },
    );
    expect(t.builds[0]!.provisioners[0]!.settings({})).toEqual({ inline: ['echo hello amazon-chroot'] });
    const p = await problems('l.json', template([CHROOT], [{ type: 'shell', inline: ['{{user `nope`}}'] }]));
    expect(p[0]).toMatch(/user variable "nope" is not defined; add it to "variables" or pass -var nope=\.\.\./);
  });

  it('lists unsupported provisioners and post-processors, or warns with ignoreUnsupported', async () => {
    const text = JSON.stringify({
      builders: [CHROOT],
      provisioners: [{ type: 'ansible', playbook_file: 'x.yml' }],
      'post-processors': [{ type: 'docker-push' }],
    });
    const p = await problems('u.json', text);
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/provisioner "ansible" is not supported \(supported: shell, file, shell-local\)/);
    expect(p[1]).toMatch(/post-processor "docker-push" is not supported \(supported: manifest\)/);
    const t = await load('u.json', text, { ignoreUnsupported: true });
    expect(t.warnings).toHaveLength(2);
    expect(t.builds[0]!.provisioners).toEqual([]);
  });
});

describe('writePackerManifest', () => {
  it("appends to an existing manifest in Packer's format and sets last_run_uuid", async () => {
    const output = join(dir, 'm.json');
    const t = await load(
      't.pkr.hcl',
      `${SOURCE()}\nbuild {\n  sources = ["source.amazon-chroot.a"]\n  post-processor "manifest" {\n    output = "${output}"\n    custom_data = { src = build.SourceAMI }\n  }\n}`,
    );
    const build = t.builds[0]!;
    await writePackerManifest(
      build,
      { images: { 'us-east-1': 'ami-1', 'eu-west-1': 'ami-2' }, data: { SourceAMI: 'ami-src' } },
      'run-1',
    );
    await writePackerManifest(build, { images: { 'us-east-1': 'ami-3' }, data: { SourceAMI: 'ami-src' } }, 'run-2');
    const m = JSON.parse(await readFile(output, 'utf8')) as {
      builds: Record<string, unknown>[];
      last_run_uuid: string;
    };
    expect(m.last_run_uuid).toBe('run-2');
    expect(m.builds).toHaveLength(2);
    expect(m.builds[0]).toMatchObject({
      name: 'a',
      builder_type: 'amazon-chroot',
      files: null,
      artifact_id: 'eu-west-1:ami-2,us-east-1:ami-1',
      packer_run_uuid: 'run-1',
      custom_data: { src: 'ami-src' },
    });
    expect(m.builds[1]).toMatchObject({ artifact_id: 'us-east-1:ami-3', packer_run_uuid: 'run-2' });
  });
});
