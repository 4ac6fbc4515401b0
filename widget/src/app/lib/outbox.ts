/**
 * Messages typed but not yet acknowledged, kept in IndexedDB so a reload, a closed tab or a dropped
 * network loses nothing. Each keeps its clientMessageId, so resending can never make a duplicate.
 */
export interface Pending {
  clientMessageId: string;
  conversationId: string;
  body: string;
  attachmentIds: string[];
  createdAt: number;
}

const DB = 'casebridge-widget';
const STORE = 'outbox';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'clientMessageId' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const req = fn(t.objectStore(STORE));
    t.oncomplete = () => {
      db.close();
      resolve(req.result);
    };
    t.onerror = () => reject(t.error);
  });
}

export const outbox = {
  put: (p: Pending) => tx('readwrite', (s) => s.put(p)).then(() => undefined),
  remove: (id: string) => tx('readwrite', (s) => s.delete(id)).then(() => undefined),
  async list(conversationId: string): Promise<Pending[]> {
    const all = (await tx('readonly', (s) => s.getAll())) as Pending[];
    return all.filter((p) => p.conversationId === conversationId).sort((a, b) => a.createdAt - b.createdAt);
  },
  clear: () => tx('readwrite', (s) => s.clear()).then(() => undefined),
};
