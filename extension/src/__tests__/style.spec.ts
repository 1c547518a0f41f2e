// Jest runs in Node; the package has no @types/node, so name the little used here.
declare const __dirname: string;
declare function require(name: 'fs'): {
  readFileSync(path: string, encoding: 'utf-8'): string;
};

/** The selectors of every rule in `css`, nested at-rules included. */
function selectors(css: string): string[] {
  const out: string[] = [];
  const text = css.replace(/\/\*[\s\S]*?\*\//g, '');
  // A selector list is what stands before `{` after the previous `}`, `{` or `;`.
  const rule = /(^|[{};])\s*([^{};]+?)\s*\{/g;
  for (let match = rule.exec(text); match; match = rule.exec(text)) {
    const prelude = match[2];
    if (!prelude.startsWith('@')) {
      out.push(...prelude.split(',').map(s => s.trim()));
    }
  }
  return out;
}

describe('the panel stylesheet', () => {
  const css = require('fs').readFileSync(
    `${__dirname}/../../style/base.css`,
    'utf-8'
  );

  it('scopes every rule under the panel root', () => {
    const all = selectors(css);
    expect(all.length).toBeGreaterThan(50);
    const unscoped = all.filter(
      s => s !== '.rds-panel' && !s.startsWith('.rds-panel ')
    );
    // rds's notebook cards use .rds-title, .rds-badge, ...: a global rule restyles them.
    expect(unscoped).toEqual([]);
  });

  it('finds an unscoped rule', () => {
    expect(selectors('.rds-panel .a, .rds-title { x: 1 }')).toEqual([
      '.rds-panel .a',
      '.rds-title'
    ]);
  });
});
