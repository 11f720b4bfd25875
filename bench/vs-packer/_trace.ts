import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxImage } from '../../fixtures/busybox-image.js';
import { motoEc2, startBuildHost, startMoto } from '../../fixtures/moto.js';
const dir = await mkdtemp(join(tmpdir(), 'vsp-trace-'));
const moto = await startMoto({ knobs: { preset: 'instant' } });
try {
  const ec2 = motoEc2(moto.endpoint, 'us-east-1');
  const host = await startBuildHost(ec2);
  const baseImage = join(dir, 'base.img');
  await makeBusyboxImage(baseImage, { sizeMiB: 32, tmpDir: dir });
  for (const sub of ['lock', 'dev', 'state', 'mnt']) await mkdir(join(dir, sub), { recursive: true });
  const params = { endpoint: moto.endpoint, ...host, dir, baseImage, label: 't', pollScale: 1 };
  for (let i = 0; i < Number(process.argv[2] ?? 1); i++) {
    const out = execFileSync('strace', ['-f', '-tt', '-e', 'trace=execve,openat,fsync,fdatasync,rename,mount,umount2,exit_group', '-o', `/tmp/vsp-trace-${i}.txt`, process.execPath, '.bench-out/vs-packer-ours-child.mjs', JSON.stringify(params)]);
    console.log(out.toString());
  }
} finally { await moto.stop(); await rm(dir, { recursive: true, force: true }); }
