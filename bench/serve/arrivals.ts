/**
 * When each request is sent, as offsets in seconds from the start of the run (vllm bench serve's model):
 * all at once for an infinite rate; otherwise gaps drawn from Gamma(shape = burstiness, scale =
 * 1 / (rate · burstiness)), mean 1 / rate: burstiness 1 is a Poisson process, < 1 burstier, > 1 more
 * even, infinite a fixed interval. The cumulative times are then scaled so the last request goes out at
 * exactly n / rate, which keeps the offered load equal across seeds.
 */
import type { Rng } from './random.ts';

/** The raw gaps between arrivals, in seconds (n of them; the first is the wait before request 0). */
export function interArrivalGaps(n: number, rate: number, burstiness: number, rng: Rng): number[] {
  if (!(rate > 0)) throw new RangeError(`--request-rate must be positive, got ${rate}`);
  if (!(burstiness > 0)) throw new RangeError(`--burstiness must be positive, got ${burstiness}`);
  if (rate === Infinity) return new Array<number>(n).fill(0);
  if (burstiness === Infinity) return new Array<number>(n).fill(1 / rate);
  const scale = 1 / (rate * burstiness);
  return Array.from({ length: n }, () => rng.gamma(burstiness, scale));
}

/** Send times in seconds from the start, ascending; the last one is n / rate (0 for an infinite rate). */
export function arrivalTimes(n: number, rate: number, burstiness: number, rng: Rng): number[] {
  const gaps = interArrivalGaps(n, rate, burstiness, rng);
  const times: number[] = [];
  let t = 0;
  for (const gap of gaps) times.push((t += gap));
  const last = times[times.length - 1] ?? 0;
  if (last > 0) {
    const factor = n / rate / last;
    for (let i = 0; i < times.length; i++) times[i]! *= factor;
  }
  return times;
}
