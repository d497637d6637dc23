import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { KNOWN_KEYS } from './config';

/**
 * Keeps the README's troubleshooting table from drifting: every error the
 * module can throw must be listed there, by the fixed text its message
 * starts with.
 */
function errorMessagePrefixes(): { file: string; prefix: string }[] {
  const found: { file: string; prefix: string }[] = [];
  const files = readdirSync(__dirname).filter(
    f => f.endsWith('.ts') && !f.endsWith('.test.ts'),
  );
  for (const file of files) {
    const source = ts.createSourceFile(
      file,
      readFileSync(join(__dirname, file), 'utf8'),
      ts.ScriptTarget.Latest,
      true,
    );
    const visit = (node: ts.Node) => {
      if (
        ts.isNewExpression(node) &&
        /Error$/.test(node.expression.getText(source)) &&
        node.arguments?.length
      ) {
        const arg = node.arguments[0];
        let text: string | undefined;
        if (
          ts.isStringLiteral(arg) ||
          ts.isNoSubstitutionTemplateLiteral(arg)
        ) {
          text = arg.text;
        } else if (ts.isTemplateExpression(arg)) {
          text = arg.head.text || arg.templateSpans[0].literal.text;
        }
        if (text !== undefined) {
          found.push({ file, prefix: text.split(/[(:]/)[0].trim() });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

describe('README troubleshooting', () => {
  const readme = readFileSync(join(__dirname, '../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## 7. Troubleshooting'));

  it('finds the errors of the module', () => {
    expect(errorMessagePrefixes().length).toBeGreaterThan(30);
  });

  it.each(errorMessagePrefixes().map(e => [e.prefix, e.file]))(
    'lists "%s" (%s)',
    prefix => {
      expect(section).toContain(prefix);
    },
  );
});

describe('README configuration', () => {
  const readme = readFileSync(join(__dirname, '../README.md'), 'utf8');
  const configDts = readFileSync(join(__dirname, '../config.d.ts'), 'utf8');

  it.each(KNOWN_KEYS.map(k => [k]))(
    'documents the key %s in the README and config.d.ts',
    key => {
      expect(readme).toContain(`\`${key}`);
      expect(configDts).toMatch(new RegExp(`\\b${key}\\??:`));
    },
  );
});
