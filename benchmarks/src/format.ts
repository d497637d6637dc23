/*
 * Output that the repo's Prettier leaves as it is, so that a results/ folder
 * never fails `prettier --check`: JSON laid out as Prettier lays it out, and
 * Markdown tables with padded columns.
 */

const PRINT_WIDTH = 80;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isPrimitive(value: Json): value is null | boolean | number | string {
  return value === null || typeof value !== 'object';
}

/**
 * Like `JSON.stringify(value, null, 2)`, except that an array of numbers,
 * strings or booleans goes on one line when that line fits in 80 columns.
 */
export function stringifyJson(value: unknown): string {
  // through JSON first: drops undefined, turns NaN into null
  const json = JSON.parse(JSON.stringify(value)) as Json;
  const print = (
    v: Json,
    indent: string,
    prefix: string,
    suffix: string,
  ): string => {
    const head = `${indent}${prefix}`;
    if (isPrimitive(v)) return `${head}${JSON.stringify(v)}${suffix}`;
    const inner = `${indent}  `;
    if (Array.isArray(v)) {
      if (v.length === 0) return `${head}[]${suffix}`;
      if (v.every(isPrimitive)) {
        const flat = `${head}[${v
          .map(x => JSON.stringify(x))
          .join(', ')}]${suffix}`;
        if (flat.length <= PRINT_WIDTH) return flat;
      }
      const items = v.map((x, i) =>
        print(x, inner, '', i < v.length - 1 ? ',' : ''),
      );
      return [`${head}[`, ...items, `${indent}]${suffix}`].join('\n');
    }
    const entries = Object.entries(v);
    if (entries.length === 0) return `${head}{}${suffix}`;
    const items = entries.map(([k, x], i) =>
      print(
        x,
        inner,
        `${JSON.stringify(k)}: `,
        i < entries.length - 1 ? ',' : '',
      ),
    );
    return [`${head}{`, ...items, `${indent}}${suffix}`].join('\n');
  };
  return `${print(json, '', '', '')}\n`;
}

/** Bytes as MB (2^20 bytes), one decimal. */
export const mb = (bytes: number) =>
  Math.round((bytes / 1024 / 1024) * 10) / 10;

/** A Markdown table with padded columns; `align` per column. */
export function markdownTable(
  header: string[],
  rows: string[][],
  align: Array<'left' | 'right'>,
): string {
  const width = header.map((h, i) =>
    Math.max(3, h.length, ...rows.map(r => (r[i] ?? '').length)),
  );
  const pad = (text: string, i: number) =>
    align[i] === 'right' ? text.padStart(width[i]) : text.padEnd(width[i]);
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => pad(c ?? '', i)).join(' | ')} |`;
  const rule = `| ${width
    .map((w, i) =>
      align[i] === 'right' ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w),
    )
    .join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
