/** `nemotron chat` — not implemented yet. */
export async function run(_argv: string[]): Promise<number> {
  console.error('nemotron chat: not implemented yet');
  return 1;
}
