/**
 * A small server-sent-events reader (the WHATWG event-stream format): feed it text as it arrives, it
 * calls back with each event's data. Lines end in \n, \r\n or \r (a \r at the end of one chunk may be
 * the first half of a \r\n split across chunks); `data:` lines join with \n; a blank line dispatches;
 * comments (`:`) and other fields are skipped. The bench ships in the CLI, and eventsource-parser is
 * only a devDependency, so it carries its own.
 */
export class SseReader {
  #buffer = '';
  #data: string[] = [];
  #hasData = false;
  #pendingCR = false;
  readonly #onData: (data: string) => void;

  constructor(onData: (data: string) => void) {
    this.#onData = onData;
  }

  feed(text: string): void {
    let start = 0;
    if (this.#pendingCR) {
      this.#pendingCR = false;
      if (text.startsWith('\n')) start = 1;
    }
    let buffer = this.#buffer;
    for (let i = start; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      this.#line(buffer + text.slice(start, i));
      buffer = '';
      if (ch === 13) {
        if (i + 1 === text.length) this.#pendingCR = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.#buffer = buffer + text.slice(start);
  }

  /** The stream ended: an event without its blank line is dropped, as the spec says. */
  end(): void {
    this.#buffer = '';
    this.#data = [];
    this.#hasData = false;
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#hasData) {
        const data = this.#data.join('\n');
        this.#data = [];
        this.#hasData = false;
        this.#onData(data);
      }
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== 'data') return;
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    this.#data.push(value);
    this.#hasData = true;
  }
}
