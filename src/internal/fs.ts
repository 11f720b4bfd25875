/**
 * File-system probes shared by the layers: stat and lstat that answer "absent" for ENOENT and
 * throw on every other error (a permission problem must not read as "not there").
 */
import { lstat, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';

/** The errno code of a thrown value (`'ENOENT'`, `'ELOOP'`, ...), if it has one. @internal */
export function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

const isMissing = (error: unknown): boolean => errnoCode(error) === 'ENOENT';

/** `stat`, or undefined when the path does not exist. @internal */
export async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** `lstat` (a final symlink is not followed), or undefined when the path does not exist. @internal */
export async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Whether the path exists, without following a final symlink. @internal */
export async function lexists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}
