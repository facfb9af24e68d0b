/** `nemotron pull` — not implemented yet. */
export async function run(_argv: string[]): Promise<number> {
  console.error('nemotron pull: not implemented yet');
  return 1;
}
