/**
 * Which ext4 structure each 4 KiB block of an image belongs to (from dumpe2fs and debugfs), and
 * the changed 512 KiB blocks of a working copy broken down by what changed in them: the benchmark
 * uses it to say what the upload surplus over the data written is made of.
 */
import { open } from 'node:fs/promises';
import { EBS_BLOCK_SIZE } from '../../src/aws/ebs/blocks.js';
import { run } from '../../src/host/exec.js';

/** The ext4 structures the benchmark tells apart; everything else is file or directory data. */
export type Ext4Kind = 'superblock+gdt' | 'block bitmap' | 'inode bitmap' | 'inode table' | 'journal' | 'data';

/** The kind of every metadata block of an ext4 image (absent: data). */
export interface Ext4Map {
  readonly blockSize: number;
  readonly kinds: ReadonlyMap<number, Ext4Kind>;
}

/** Reads the layout of the ext4 file system in `image` (a file holding it whole, no partition table). */
export async function ext4Map(image: string): Promise<Ext4Map> {
  const kinds = new Map<number, Ext4Kind>();
  const mark = (from: number, to: number, kind: Ext4Kind): void => {
    for (let b = from; b <= to; b++) kinds.set(b, kind);
  };
  const { stdout } = await run('dumpe2fs', [image], { timeoutMs: 120_000 });
  const blockSize = Number(/^Block size:\s+(\d+)/m.exec(stdout)?.[1] ?? 4096);
  const ranges: [RegExp, Ext4Kind][] = [
    [/superblock at (\d+)(?:-(\d+))?/g, 'superblock+gdt'],
    [/Group descriptors at (\d+)-(\d+)/g, 'superblock+gdt'],
    [/Reserved GDT blocks at (\d+)-(\d+)/g, 'superblock+gdt'],
    [/Block bitmap at (\d+)(?:-(\d+))?/g, 'block bitmap'],
    [/Inode bitmap at (\d+)(?:-(\d+))?/g, 'inode bitmap'],
    [/Inode table at (\d+)-(\d+)/g, 'inode table'],
  ];
  for (const [pattern, kind] of ranges)
    for (const m of stdout.matchAll(pattern)) mark(Number(m[1]), Number(m[2] ?? m[1]), kind);
  // The journal is inode 8; `blocks` lists its data blocks one by one.
  const journal = await run('debugfs', ['-R', 'blocks <8>', image], { timeoutMs: 120_000 });
  for (const b of journal.stdout.split(/\s+/).filter(Boolean)) kinds.set(Number(b), 'journal');
  return { blockSize, kinds };
}

/** What the changed 512 KiB blocks of a working copy hold. */
export interface ChangeBreakdown {
  /** Changed fs blocks (pages) by kind. */
  readonly pages: Readonly<Record<Ext4Kind, number>>;
  /** Changed 512 KiB blocks holding at least one changed data page. */
  readonly dataBlocks: number;
  /** Changed 512 KiB blocks holding only changed metadata, by the kinds changed in them. */
  readonly metadataOnly: Readonly<Record<string, number>>;
  /** Every changed 512 KiB block. */
  readonly blocks: number;
}

/** Compares `work` with `source` block by block and breaks the difference down by ext4 kind. */
export async function changeBreakdown(work: string, source: string, map: Ext4Map): Promise<ChangeBreakdown> {
  const pages: Record<Ext4Kind, number> = {
    'superblock+gdt': 0,
    'block bitmap': 0,
    'inode bitmap': 0,
    'inode table': 0,
    journal: 0,
    data: 0,
  };
  const metadataOnly: Record<string, number> = {};
  let dataBlocks = 0;
  let blocks = 0;
  const w = await open(work, 'r');
  const s = await open(source, 'r');
  const a = Buffer.alloc(EBS_BLOCK_SIZE);
  const b = Buffer.alloc(EBS_BLOCK_SIZE);
  const per = EBS_BLOCK_SIZE / map.blockSize;
  try {
    const count = Math.ceil((await w.stat()).size / EBS_BLOCK_SIZE);
    for (let i = 0; i < count; i++) {
      a.fill(0);
      b.fill(0);
      await w.read(a, 0, EBS_BLOCK_SIZE, i * EBS_BLOCK_SIZE);
      await s.read(b, 0, EBS_BLOCK_SIZE, i * EBS_BLOCK_SIZE);
      if (a.equals(b)) continue;
      blocks++;
      const kinds = new Set<Ext4Kind>();
      for (let p = 0; p < per; p++) {
        const o = p * map.blockSize;
        if (a.compare(b, o, o + map.blockSize, o, o + map.blockSize) === 0) continue;
        const kind = map.kinds.get(i * per + p) ?? 'data';
        pages[kind]++;
        kinds.add(kind);
      }
      if (kinds.has('data')) dataBlocks++;
      else {
        const key = [...kinds].sort().join(' + ');
        metadataOnly[key] = (metadataOnly[key] ?? 0) + 1;
      }
    }
  } finally {
    await w.close();
    await s.close();
  }
  return { pages, dataBlocks, metadataOnly, blocks };
}
