/**
 * The raw bytes of a single token and their display form, for OpenAI logprobs (`token` and `bytes`).
 *
 * Decoding one token on its own loses information the logprobs need: a byte-level or byte-fallback token
 * that holds part of a UTF-8 character decodes to U+FFFD, so the bytes are recovered from the token string.
 */

/**
 * GPT-2's bytes_to_unicode, inverted: byte-level BPE (Llama 3, Qwen2) spells every byte as a printable
 * character; printable Latin-1 bytes stand for themselves, the others for U+0100 + n in byte order.
 */
const BYTE_LEVEL_CHAR_TO_BYTE: ReadonlyMap<string, number> = (() => {
  const map = new Map<string, number>();
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    map.set(String.fromCodePoint(printable ? byte : 256 + shifted++), byte);
  }
  return map;
})();

/** The bytes a byte-level BPE token string stands for, or null when it is not one (an added token's text). */
export function byteLevelTokenBytes(token: string): Uint8Array | null {
  const bytes: number[] = [];
  for (const char of token) {
    const byte = BYTE_LEVEL_CHAR_TO_BYTE.get(char);
    if (byte === undefined) return null;
    bytes.push(byte);
  }
  return Uint8Array.from(bytes);
}

const BYTE_FALLBACK_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

/** The byte of a SentencePiece byte-fallback token such as `<0xE2>`, or null. */
export function byteFallbackTokenByte(token: string): number | null {
  const match = BYTE_FALLBACK_TOKEN.exec(token);
  return match === null ? null : Number.parseInt(match[1]!, 16);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Text for display: valid UTF-8 as characters, every byte of an incomplete or invalid sequence as `\xNN`,
 * the way OpenAI's logprobs show tokens that split a character (the exact bytes go in the `bytes` field).
 */
export function bytesToDisplayText(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    // Fall through: walk character by character and escape what does not decode.
  }
  let text = '';
  let i = 0;
  while (i < bytes.length) {
    const length = validCharLengthAt(bytes, i);
    if (length === 0) {
      text += `\\x${bytes[i]!.toString(16).padStart(2, '0')}`;
      i += 1;
    } else {
      text += strictUtf8.decode(bytes.subarray(i, i + length));
      i += length;
    }
  }
  return text;
}

/** Length of the valid UTF-8 character starting at `start`, or 0 when none does. */
function validCharLengthAt(bytes: Uint8Array, start: number): number {
  for (let length = 1; length <= 4 && start + length <= bytes.length; length++) {
    try {
      strictUtf8.decode(bytes.subarray(start, start + length));
      return length;
    } catch {
      // Too short for this lead byte, or invalid: try one more byte.
    }
  }
  return 0;
}
