/**
 * The HCL2 parser, loaded on first use: it is a WebAssembly module that programs importing the
 * library for anything else should not pay for.
 */

/** Parses HCL2 text to the JSON form of its blocks and attributes (expressions stay text). */
export async function parseHcl(file: string, text: string): Promise<unknown> {
  const { parse } = await import('@cdktn/hcl2json');
  return parse(file, text);
}
