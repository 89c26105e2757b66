/**
 * Runs a zod schema over a request body and turns the first problem into an OpenAI-style 400 that
 * names the parameter the way OpenAI does (`messages[0].content`), e.g.
 * "Invalid type for 'temperature': expected a number, but got a string instead."
 */
import type { z } from 'zod';
import { invalidRequest, type ApiError } from '../errors.ts';

type Issue = z.core.$ZodIssue;
type PathKey = PropertyKey;

export function parseRequest<Schema extends z.ZodType>(schema: Schema, body: unknown): z.output<Schema> {
  // reportInput lets us tell a missing field (no input) from a wrong one, and quote the bad value.
  const result = schema.safeParse(body, { reportInput: true });
  if (result.success) return result.data;
  const first = result.error.issues[0];
  throw first ? issueToApiError(first, []) : invalidRequest('Invalid request body.');
}

function issueToApiError(issue: Issue, prefix: PathKey[]): ApiError {
  const path = [...prefix, ...issue.path];
  const param = path.length > 0 ? formatParam(path) : null;
  const name = param === null ? 'request body' : `'${param}'`;
  // JSON has no `undefined`, so an undefined input means the field was absent.
  const hasInput = issue.input !== undefined;

  switch (issue.code) {
    case 'invalid_type':
      if (!hasInput) return invalidRequest(`Missing required parameter: ${name}.`, param, 'missing_required_parameter');
      return invalidRequest(
        `Invalid type for ${name}: expected ${describeExpected(issue.expected)}, but got ${describeValue(issue.input)} instead.`,
        param,
        'invalid_type',
      );
    case 'too_big':
    case 'too_small':
      return rangeError(issue, name, param);
    case 'invalid_value':
      return invalidRequest(
        `Invalid value for ${name}: expected one of ${issue.values.map(quote).join(', ')}, but got ${quote(issue.input)} instead.`,
        param,
        'invalid_value',
      );
    case 'invalid_union':
      return unionError(issue, path, name, param);
    case 'custom': {
      const code = typeof issue.params?.['code'] === 'string' ? issue.params['code'] : 'invalid_value';
      // Schemas write `{param}` where the parameter's full name belongs (they only know the local path).
      return invalidRequest(issue.message.replaceAll('{param}', param ?? 'request body'), param, code);
    }
    default:
      return invalidRequest(`Invalid value for ${name}: ${issue.message}.`, param, 'invalid_value');
  }
}

function rangeError(issue: z.core.$ZodIssueTooBig | z.core.$ZodIssueTooSmall, name: string, param: string | null): ApiError {
  const isBig = issue.code === 'too_big';
  const limit = isBig ? (issue as z.core.$ZodIssueTooBig).maximum : (issue as z.core.$ZodIssueTooSmall).minimum;
  const inclusive = issue.inclusive ?? true;
  if (issue.origin === 'array' || issue.origin === 'string') {
    const noun = issue.origin === 'array' ? 'item' : 'character';
    const unit = Number(limit) === 1 ? noun : `${noun}s`;
    const bound = isBig ? 'at most' : 'at least';
    const length = Array.isArray(issue.input) || typeof issue.input === 'string' ? issue.input.length : '?';
    return invalidRequest(
      `Invalid ${name}: expected ${bound} ${String(limit)} ${unit}, but got ${length} instead.`,
      param,
      isBig ? `${issue.origin}_above_max_length` : `${issue.origin}_below_min_length`,
    );
  }
  const comparison = isBig ? (inclusive ? '<=' : '<') : inclusive ? '>=' : '>';
  return invalidRequest(
    `Invalid ${name}: expected a value ${comparison} ${String(limit)}, but got ${describeInput(issue.input)} instead.`,
    param,
    isBig ? 'value_above_max' : 'value_below_min',
  );
}

/**
 * zod reports a failed union as one issue list per branch. The branch that got past the type check
 * (its issues sit deeper than the union itself) is the one the client meant, so report its problem;
 * when every branch failed on type, say which types would have been accepted.
 */
function unionError(issue: z.core.$ZodIssueInvalidUnion, path: PathKey[], name: string, param: string | null): ApiError {
  const branches = issue.errors;
  const deeper = branches.find((branchIssues) => branchIssues.some((inner) => inner.path.length > 0 || inner.code !== 'invalid_type'));
  const deeperIssue = deeper?.find((inner) => inner.path.length > 0 || inner.code !== 'invalid_type');
  if (deeperIssue) return issueToApiError(deeperIssue, path);
  if (issue.input === undefined) return invalidRequest(`Missing required parameter: ${name}.`, param, 'missing_required_parameter');
  const expected = branches
    .map((branchIssues) => branchIssues[0])
    .filter((inner): inner is z.core.$ZodIssueInvalidType => inner?.code === 'invalid_type')
    .map((inner) => describeExpected(inner.expected));
  const alternatives = [...new Set(expected)].join(' or ') || 'a different type';
  return invalidRequest(
    `Invalid type for ${name}: expected ${alternatives}, but got ${describeValue(issue.input)} instead.`,
    param,
    'invalid_type',
  );
}

/** ['messages', 0, 'content'] → "messages[0].content", as OpenAI names nested params. */
export function formatParam(path: PathKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

function describeExpected(expected: string): string {
  switch (expected) {
    case 'int':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean';
    case 'array':
    case 'tuple':
      return 'an array';
    case 'object':
    case 'record':
      return 'an object';
    case 'null':
      return 'null';
    default:
      return expected;
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'boolean') return 'a boolean';
  return typeof value;
}

function describeInput(value: unknown): string {
  return typeof value === 'number' || typeof value === 'bigint' ? String(value) : describeValue(value);
}

function quote(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : JSON.stringify(value) ?? String(value);
}
