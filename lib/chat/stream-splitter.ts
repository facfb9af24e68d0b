/**
 * Finds marker strings (`</think>`, `<TOOLCALL>`, stop strings) in streamed text
 * that may arrive split across tokens. Text is released as soon as it cannot be
 * the start of a marker; a possible partial marker at the end is held back until
 * the next chunk decides it. So no half marker is ever shown and markers are
 * found whether the tokenizer has them as one token or several.
 */
export type SplitPiece = { type: 'text'; text: string } | { type: 'marker'; marker: string };

export class StreamSplitter {
  private held = '';

  constructor(private markers: readonly string[]) {}

  setMarkers(markers: readonly string[]): void {
    this.markers = markers;
  }

  push(text: string): SplitPiece[] {
    const out: SplitPiece[] = [];
    let buf = this.held + text;
    for (;;) {
      let best = -1;
      let which = '';
      for (const m of this.markers) {
        if (!m) continue;
        const i = buf.indexOf(m);
        if (i >= 0 && (best < 0 || i < best || (i === best && m.length > which.length))) {
          best = i;
          which = m;
        }
      }
      if (best < 0) break;
      if (best > 0) out.push({ type: 'text', text: buf.slice(0, best) });
      out.push({ type: 'marker', marker: which });
      buf = buf.slice(best + which.length);
    }
    const keep = this.partialSuffix(buf);
    const release = buf.slice(0, buf.length - keep);
    if (release) out.push({ type: 'text', text: release });
    this.held = buf.slice(buf.length - keep);
    return out;
  }

  /** Releases whatever is held (end of stream: a partial marker is just text). */
  flush(): string {
    const h = this.held;
    this.held = '';
    return h;
  }

  /** Length of the longest suffix of `s` that is a proper prefix of some marker. */
  private partialSuffix(s: string): number {
    let best = 0;
    for (const m of this.markers) {
      for (let k = Math.min(m.length - 1, s.length); k > best; k--) {
        if (s.endsWith(m.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}
