// Label selectors: matching labels against the structured form objects carry, and
// reading the kubectl string form (`--provider-selector`, `kubectl -l`) into it.
import type { LabelSelector } from "@ktube/api";

type Requirement = NonNullable<LabelSelector["matchExpressions"]>[number];

/** Does a set of labels satisfy a selector? An empty selector matches everything. */
export function matchesSelector(labels: Record<string, string>, selector: LabelSelector): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    const values = req.values ?? [];
    if (req.operator === "In" && !(has && values.includes(value!))) return false;
    if (req.operator === "NotIn" && has && values.includes(value!)) return false;
    if (req.operator === "Exists" && !has) return false;
    if (req.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

// Label keys and values as apimachinery validates them: a key is an optional DNS
// subdomain prefix and `/`, then a name; names and values are at most 63 characters.
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

type Token =
  | { kind: "word"; text: string; at: number }
  | { kind: "symbol"; text: "!" | "=" | "==" | "!=" | "(" | ")" | "," | ">" | "<"; at: number };

class SelectorSyntaxError extends Error {
  constructor(text: string, detail: string) {
    super(`invalid label selector ${JSON.stringify(text)}: ${detail}`);
    this.name = "SelectorSyntaxError";
  }
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (/[A-Za-z0-9._/-]/.test(c)) {
      const start = i;
      while (i < text.length && /[A-Za-z0-9._/-]/.test(text[i]!)) i++;
      tokens.push({ kind: "word", text: text.slice(start, i), at: start });
    } else if ((c === "!" || c === "=") && text[i + 1] === "=") {
      tokens.push({ kind: "symbol", text: c === "!" ? "!=" : "==", at: i });
      i += 2;
    } else if (c === "!" || c === "=" || c === "(" || c === ")" || c === "," || c === ">" || c === "<") {
      tokens.push({ kind: "symbol", text: c, at: i });
      i++;
    } else {
      throw new SelectorSyntaxError(text, `unexpected character ${JSON.stringify(c)} at position ${i}`);
    }
  }
  return tokens;
}

/**
 * Reads the string form of a label selector, as `kubectl -l` takes it:
 * `a=b,c==d,e!=f,g in (x,y),h notin (z),i,!j`. Every requirement becomes a
 * matchExpression (`=` is `In` with one value, `!=` is `NotIn`, a bare key is
 * `Exists`, `!key` is `DoesNotExist`), so repeating a key keeps both requirements
 * as the string form does. An empty string selects everything. `>` and `<` are
 * refused: LabelSelector objects cannot express them. Throws on any syntax error.
 */
export function parseLabelSelector(text: string): LabelSelector {
  const tokens = tokenize(text);
  if (tokens.length === 0) return {};
  let next = 0;
  const peek = (): Token | undefined => tokens[next];
  const where = (token: Token | undefined): string => (token ? `at position ${token.at}` : "at the end");
  const fail = (detail: string): never => {
    throw new SelectorSyntaxError(text, detail);
  };
  const isSymbol = (token: Token | undefined, symbol: string): boolean => token?.kind === "symbol" && token.text === symbol;
  const atRequirementEnd = (): boolean => peek() === undefined || isSymbol(peek(), ",");

  const key = (): string => {
    const token = tokens[next++];
    if (token?.kind !== "word") return fail(`expected a label key ${where(token)}`);
    const slash = token.text.indexOf("/");
    const prefix = slash >= 0 ? token.text.slice(0, slash) : undefined;
    const name = slash >= 0 ? token.text.slice(slash + 1) : token.text;
    const prefixOk = prefix === undefined || (prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix));
    if (!prefixOk || name.length > 63 || !LABEL_NAME.test(name)) {
      fail(`${JSON.stringify(token.text)} is not a valid label key (an optional DNS prefix and "/", then up to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit)`);
    }
    return token.text;
  };
  const value = (): string => {
    const token = tokens[next++];
    if (token?.kind !== "word") return fail(`expected a label value ${where(token)}`);
    if (token.text.length > 63 || !LABEL_NAME.test(token.text)) {
      fail(`${JSON.stringify(token.text)} is not a valid label value (up to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit)`);
    }
    return token.text;
  };
  const valueSet = (operator: string): string[] => {
    if (!isSymbol(tokens[next++], "(")) fail(`expected "(" after ${operator} ${where(tokens[next - 1])}`);
    const values = [value()];
    while (isSymbol(peek(), ",")) {
      next++;
      values.push(value());
    }
    if (!isSymbol(tokens[next++], ")")) fail(`expected "," or ")" in the values of ${operator} ${where(tokens[next - 1])}`);
    return values;
  };

  const requirement = (): Requirement => {
    if (isSymbol(peek(), "!")) {
      next++;
      return { key: key(), operator: "DoesNotExist" };
    }
    const label = key();
    if (atRequirementEnd()) return { key: label, operator: "Exists" };
    const operator = tokens[next++]!;
    if (isSymbol(operator, "=") || isSymbol(operator, "==")) {
      // `a=` selects the empty value, as in apimachinery.
      return { key: label, operator: "In", values: [atRequirementEnd() ? "" : value()] };
    }
    if (isSymbol(operator, "!=")) return { key: label, operator: "NotIn", values: [atRequirementEnd() ? "" : value()] };
    if (operator.kind === "word" && operator.text === "in") return { key: label, operator: "In", values: valueSet("in") };
    if (operator.kind === "word" && operator.text === "notin") return { key: label, operator: "NotIn", values: valueSet("notin") };
    if (isSymbol(operator, ">") || isSymbol(operator, "<")) {
      return fail(`operator ${operator.text} is not supported (label selectors of objects have only =, ==, !=, in, notin, exists and !)`);
    }
    return fail(`expected an operator (=, ==, !=, in, notin), "," or the end after ${JSON.stringify(label)} ${where(operator)}`);
  };

  const matchExpressions: Requirement[] = [requirement()];
  while (next < tokens.length) {
    if (!isSymbol(tokens[next++], ",")) fail(`expected "," between requirements ${where(tokens[next - 1])}`);
    matchExpressions.push(requirement());
  }
  return { matchExpressions };
}
