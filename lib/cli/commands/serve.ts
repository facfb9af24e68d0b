/** `nemotron serve` — not implemented yet. */
export async function run(_argv: string[]): Promise<number> {
  console.error('nemotron serve: not implemented yet');
  return 1;
}
