// The query side of the ARM emulator's Azure Resource Graph endpoint: a strict subset of Resource
// Graph's KQL, parsed and evaluated over rows the emulator builds from its own state. Anything
// outside the subset is refused as Resource Graph refuses a query it cannot parse (400 BadRequest,
// details InvalidQuery + ParserFailure), so a client cannot pass a query here that the real service
// would not at least parse.
//
//   <table> ( '|' where <cond> | '|' project <col>, ... | '|' order by <column> [asc|desc] )*
//   <cond>  := <term> ( (and | or) <term> )*           (and binds tighter than or)
//   <term>  := <path> (=~ | == | !~ | !=) '<string>' | <path> (in~ | in) ('<string>', ...)
//            | isnull(<path>) | isnotnull(<path>) | isempty(<path>) | isnotempty(<path>)
//   <col>   := <name> | <name> = <path> | <name> = tostring(<path>)
//   <path>  := <name> ( . <name> )*
//
// Semantics as in KQL: `==` / `in` compare case-sensitively, `=~` / `in~` ignore case; a missing
// property is null; tostring(null) is ''. Table names ignore case, as Resource Graph's do.

export type GraphRow = Record<string, unknown>;

type Path = string[];
type Term =
  | { kind: 'cmp'; path: Path; op: '=~' | '==' | '!~' | '!='; value: string }
  | { kind: 'in'; path: Path; insensitive: boolean; values: string[] }
  | { kind: 'null'; path: Path; fn: 'isnull' | 'isnotnull' | 'isempty' | 'isnotempty' };
type Cond = Term[][]; // OR of ANDs
type Column = { name: string; path: Path; toString: boolean };
type Op = { kind: 'where'; cond: Cond } | { kind: 'project'; columns: Column[] } | { kind: 'order'; column: string; desc: boolean };

export interface GraphQuery {
  table: string;
  ops: Op[];
}

export class GraphQueryError extends Error {
  constructor(
    message: string,
    /** `ParserFailure` (syntax) or `UnknownTable` (a table the service does not have). */
    readonly kind: 'ParserFailure' | 'UnknownTable',
  ) {
    super(message);
  }
}

const TOKEN = /\s*(?:('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(=~|==|!~|!=|in~)|([A-Za-z_][A-Za-z0-9_]*)|([|(),.=]))/y;

function tokenize(q: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < q.length) {
    if (/^\s*$/.test(q.slice(at))) break;
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(q);
    if (!m) throw new GraphQueryError(`unexpected character at ${at}: ${q.slice(at, at + 10)}`, 'ParserFailure');
    out.push(m[1] ?? m[2] ?? m[3] ?? m[4]!);
    at = TOKEN.lastIndex;
  }
  return out;
}

export function parseGraphQuery(q: string, tables: string[]): GraphQuery {
  const t = tokenize(q);
  let i = 0;
  const peek = () => t[i];
  const next = () => {
    const v = t[i++];
    if (v === undefined) throw new GraphQueryError('unexpected end of query', 'ParserFailure');
    return v;
  };
  const expect = (v: string) => {
    const got = next();
    if (got.toLowerCase() !== v) throw new GraphQueryError(`expected '${v}', found '${got}'`, 'ParserFailure');
  };
  const ident = () => {
    const v = next();
    if (!/^[A-Za-z_]\w*$/.test(v)) throw new GraphQueryError(`expected a name, found '${v}'`, 'ParserFailure');
    return v;
  };
  const str = () => {
    const v = next();
    if (!/^['"]/.test(v)) throw new GraphQueryError(`expected a string literal, found '${v}'`, 'ParserFailure');
    return v.slice(1, -1).replace(/\\(.)/g, '$1');
  };
  const path = (): Path => {
    const p = [ident()];
    while (peek() === '.') {
      next();
      p.push(ident());
    }
    return p;
  };
  const term = (): Term => {
    const w = peek()?.toLowerCase();
    if ((w === 'isnull' || w === 'isnotnull' || w === 'isempty' || w === 'isnotempty') && t[i + 1] === '(') {
      next();
      expect('(');
      const p = path();
      expect(')');
      return { kind: 'null', path: p, fn: w };
    }
    const p = path();
    const op = next().toLowerCase();
    if (op === '=~' || op === '==' || op === '!~' || op === '!=') return { kind: 'cmp', path: p, op, value: str() };
    if (op === 'in~' || op === 'in') {
      expect('(');
      const values = [str()];
      while (peek() === ',') {
        next();
        values.push(str());
      }
      expect(')');
      return { kind: 'in', path: p, insensitive: op === 'in~', values };
    }
    throw new GraphQueryError(`unsupported operator '${op}'`, 'ParserFailure');
  };
  const cond = (): Cond => {
    const ors: Cond = [[term()]];
    for (;;) {
      const w = peek()?.toLowerCase();
      if (w === 'and') {
        next();
        ors[ors.length - 1]!.push(term());
      } else if (w === 'or') {
        next();
        ors.push([term()]);
      } else return ors;
    }
  };
  const table = ident();
  if (!tables.includes(table.toLowerCase())) throw new GraphQueryError(`The name '${table}' does not refer to any known table, tabular variable or function.`, 'UnknownTable');
  const ops: Op[] = [];
  while (i < t.length) {
    expect('|');
    const op = next().toLowerCase();
    if (op === 'where') ops.push({ kind: 'where', cond: cond() });
    else if (op === 'project') {
      const columns: Column[] = [];
      do {
        if (columns.length) next();
        const name = ident();
        if (peek() !== '=') {
          columns.push({ name, path: [name], toString: false });
          continue;
        }
        next();
        if (peek()?.toLowerCase() === 'tostring' && t[i + 1] === '(') {
          next();
          expect('(');
          columns.push({ name, path: path(), toString: true });
          expect(')');
        } else columns.push({ name, path: path(), toString: false });
      } while (peek() === ',');
      ops.push({ kind: 'project', columns });
    } else if (op === 'order' || op === 'sort') {
      expect('by');
      const column = ident();
      const dir = peek()?.toLowerCase();
      if (dir === 'asc' || dir === 'desc') next();
      // KQL sorts descending unless told otherwise.
      ops.push({ kind: 'order', column, desc: dir !== 'asc' });
    } else throw new GraphQueryError(`unsupported operator '${op}'`, 'ParserFailure');
  }
  return { table: table.toLowerCase(), ops };
}

const valueAt = (row: GraphRow, p: Path): unknown => {
  let v: unknown = row;
  for (const k of p) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
    // Resource Graph's property names ignore case.
    const o = v as Record<string, unknown>;
    const key = k in o ? k : Object.keys(o).find((x) => x.toLowerCase() === k.toLowerCase());
    v = key === undefined ? null : (o[key] ?? null);
  }
  return v;
};
const asString = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
const empty = (v: unknown) => v === null || v === '' || (Array.isArray(v) && v.length === 0);

function holds(row: GraphRow, term: Term): boolean {
  const v = valueAt(row, term.path);
  if (term.kind === 'null') return term.fn === 'isnull' ? v === null : term.fn === 'isnotnull' ? v !== null : term.fn === 'isempty' ? empty(v) : !empty(v);
  const s = asString(v);
  if (term.kind === 'in') return term.values.some((x) => (term.insensitive ? x.toLowerCase() === s.toLowerCase() : x === s));
  const eq = term.op === '=~' || term.op === '!~' ? s.toLowerCase() === term.value.toLowerCase() : s === term.value;
  return term.op === '=~' || term.op === '==' ? eq : !eq;
}

/** The query's rows and the columns they have (projected, or every column of the table). */
export function runGraphQuery(q: GraphQuery, rows: GraphRow[]): { rows: GraphRow[]; columns: string[] } {
  let out = rows;
  let columns: string[] | undefined;
  for (const op of q.ops) {
    if (op.kind === 'where') out = out.filter((r) => op.cond.some((and) => and.every((term) => holds(r, term))));
    else if (op.kind === 'project') {
      columns = op.columns.map((c) => c.name);
      out = out.map((r) => Object.fromEntries(op.columns.map((c) => [c.name, c.toString ? asString(valueAt(r, c.path)) : valueAt(r, c.path)])));
    } else {
      const key = op.column;
      out = [...out].sort((a, b) => {
        const x = asString(valueAt(a, [key]));
        const y = asString(valueAt(b, [key]));
        return (x < y ? -1 : x > y ? 1 : 0) * (op.desc ? -1 : 1);
      });
    }
  }
  return { rows: out, columns: columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))] };
}
