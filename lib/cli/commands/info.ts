/** `nemotron info` — not implemented yet. */
export async function run(_argv: string[]): Promise<number> {
  console.error('nemotron info: not implemented yet');
  return 1;
}
