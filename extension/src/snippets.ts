/**
 * The Python code the panel puts into notebooks. Pure functions, so tests pin the
 * exact text and its quoting.
 */

/**
 * A double-quoted Python string literal whose value is `value`.
 *
 * Profile, dataset and path names come from other people, so every character that
 * could end the literal or the line is escaped.
 *
 * @example
 * pythonString('a "b"\\c') // => "\"a \\\"b\\\"\\\\c\""  (Python: "a \"b\"\\c")
 */
export function pythonString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') {
      out += '\\\\';
    } else if (ch === '"') {
      out += '\\"';
    } else if (ch === '\n') {
      out += '\\n';
    } else if (ch === '\r') {
      out += '\\r';
    } else if (ch === '\t') {
      out += '\\t';
    } else if (code < 0x20 || code === 0x7f) {
      out += '\\x' + code.toString(16).padStart(2, '0');
    } else if (code === 0x2028 || code === 0x2029) {
      // Line separators: legal in Python strings but editors break lines on them.
      out += '\\u' + code.toString(16);
    } else {
      out += ch;
    }
  }
  return out + '"';
}

/** Open a dataset of a scientist profile: the "Insert snippet" action. */
export function datasetSnippet(profile: string, dataset: string): string {
  return [
    'import rds',
    `ds = rds.connect(profile=${pythonString(profile)}).dataset(${pythonString(dataset)})`,
    'ds'
  ].join('\n');
}

/** Fetch a decided request's result: the notification's "Insert result code". */
export function resultSnippet(profile: string, requestId: string): string {
  return [
    `req = rds.connect(profile=${pythonString(profile)}).request(${pythonString(requestId)})`,
    'req.result()'
  ].join('\n');
}

/** Open an owner's review desk on a local domain directory. */
export function reviewDeskSnippet(path: string): string {
  return [
    'import rds',
    `domain = rds.Domain.open(${pythonString(path)})`,
    'domain.review()'
  ].join('\n');
}
