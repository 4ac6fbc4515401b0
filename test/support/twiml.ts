/**
 * A strict little XML reader for TwiML in tests (no XML parser is installed, and TwiML needs only elements,
 * attributes, text and the five predefined entities). Anything malformed throws, so a test that parses a
 * response also proves it is well-formed XML.
 */
export interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  /** The element's own text (concatenated, entities decoded). */
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|\w+);/g, (whole, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    const v = ENTITIES[e];
    if (v === undefined) throw new Error(`unknown entity ${whole}`);
    return v;
  });
}

export function parseXml(xml: string): XmlNode {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`malformed XML at ${i}: ${what} in ${JSON.stringify(xml.slice(Math.max(0, i - 40), i + 40))}`);
  };
  const skipSpace = () => {
    while (i < xml.length && /\s/.test(xml[i]!)) i++;
  };
  skipSpace();
  if (xml.startsWith('<?xml', i)) {
    const end = xml.indexOf('?>', i);
    if (end < 0) fail('unterminated declaration');
    i = end + 2;
  }
  skipSpace();

  const name = () => {
    const m = /^[A-Za-z_][\w.-]*/.exec(xml.slice(i));
    if (!m) fail('expected a name');
    i += m![0].length;
    return m![0];
  };

  function element(): XmlNode {
    if (xml[i] !== '<') fail('expected <');
    i++;
    const node: XmlNode = { name: name(), attrs: {}, children: [], text: '' };
    for (;;) {
      skipSpace();
      if (xml.startsWith('/>', i)) {
        i += 2;
        return node;
      }
      if (xml[i] === '>') {
        i++;
        break;
      }
      const key = name();
      skipSpace();
      if (xml[i] !== '=') fail('expected =');
      i++;
      skipSpace();
      const quote = xml[i];
      if (quote !== '"' && quote !== "'") fail('expected a quoted value');
      const end = xml.indexOf(quote!, i + 1);
      if (end < 0) fail('unterminated attribute');
      const raw = xml.slice(i + 1, end);
      if (raw.includes('<')) fail('< in an attribute');
      if (key in node.attrs) fail(`duplicate attribute ${key}`);
      node.attrs[key] = decode(raw);
      i = end + 1;
    }
    for (;;) {
      if (i >= xml.length) fail(`unclosed <${node.name}>`);
      if (xml.startsWith('</', i)) {
        i += 2;
        const closing = name();
        if (closing !== node.name) fail(`</${closing}> closes <${node.name}>`);
        skipSpace();
        if (xml[i] !== '>') fail('expected >');
        i++;
        return node;
      }
      if (xml[i] === '<') {
        node.children.push(element());
        continue;
      }
      const next = xml.indexOf('<', i);
      const chunk = xml.slice(i, next < 0 ? xml.length : next);
      if (chunk.includes('>')) fail('stray >');
      node.text += decode(chunk);
      i += chunk.length;
    }
  }

  const root = element();
  skipSpace();
  if (i !== xml.length) fail('content after the root element');
  return root;
}

/** The root <Response> of a TwiML document (throws if it is not one). */
export function twiml(xml: string): XmlNode {
  const root = parseXml(xml);
  if (root.name !== 'Response') throw new Error(`expected <Response>, got <${root.name}>`);
  return root;
}

/** Every descendant element with this name, in document order. */
export function all(node: XmlNode, name: string): XmlNode[] {
  return node.children.flatMap((c) => [...(c.name === name ? [c] : []), ...all(c, name)]);
}

/** The one descendant with this name (throws if there is not exactly one). */
export function one(node: XmlNode, name: string): XmlNode {
  const found = all(node, name);
  if (found.length !== 1) throw new Error(`expected one <${name}>, found ${found.length}`);
  return found[0]!;
}

/** What the caller hears, in order: the text of every <Say>. */
export function spoken(node: XmlNode): string[] {
  return all(node, 'Say').map((s) => s.text);
}
