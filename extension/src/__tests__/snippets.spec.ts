import {
  datasetSnippet,
  pythonString,
  resultSnippet,
  reviewDeskSnippet
} from '../snippets';

describe('pythonString', () => {
  it('double-quotes plain text', () => {
    expect(pythonString('patients')).toBe('"patients"');
  });

  it('escapes quotes and backslashes', () => {
    expect(pythonString('say "hi"')).toBe('"say \\"hi\\""');
    expect(pythonString('C:\\data\\')).toBe('"C:\\\\data\\\\"');
    expect(pythonString("it's")).toBe('"it\'s"');
  });

  it('escapes line breaks and control characters', () => {
    expect(pythonString('a\nb\rc\td')).toBe('"a\\nb\\rc\\td"');
    expect(pythonString('\u0000\u001b\u007f')).toBe('"\\x00\\x1b\\x7f"');
    expect(pythonString('a\u2028b')).toBe('"a\\u2028b"');
  });

  it('keeps other unicode as is', () => {
    expect(pythonString('Hôpital ε 🏥')).toBe('"Hôpital ε 🏥"');
  });
});

describe('snippets', () => {
  it('opens a dataset', () => {
    expect(datasetSnippet('hospital', 'patients')).toBe(
      'import rds\nds = rds.connect(profile="hospital").dataset("patients")\nds'
    );
  });

  it('quotes names with quotes and backslashes', () => {
    expect(datasetSnippet('my "lab"', 'a\\b')).toBe(
      'import rds\nds = rds.connect(profile="my \\"lab\\"").dataset("a\\\\b")\nds'
    );
  });

  it('fetches a result', () => {
    expect(resultSnippet('hospital', 'r-1')).toBe(
      'req = rds.connect(profile="hospital").request("r-1")\nreq.result()'
    );
  });

  it('opens the review desk on a path', () => {
    expect(reviewDeskSnippet('/home/o"wner/hospital-domain')).toBe(
      'import rds\ndomain = rds.Domain.open("/home/o\\"wner/hospital-domain")\ndomain.review()'
    );
  });
});
