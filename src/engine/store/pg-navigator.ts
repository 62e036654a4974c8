/**
 * Evaluated just before pg (see pg.ts): a `navigator` as Node 21 and later define it (their userAgent is
 * `Node.js/<major>`), where the running Node has none.
 */
const g = globalThis as { navigator?: unknown };

export const definedNavigator = g.navigator === undefined;

if (definedNavigator) {
  Object.defineProperty(g, 'navigator', {
    value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}` },
    configurable: true,
    writable: true,
  });
}
