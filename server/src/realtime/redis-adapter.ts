import { createAdapter } from '@socket.io/redis-streams-adapter';
import type { Namespace } from 'socket.io';
import type { createClient } from 'redis';

type RedisClient = ReturnType<typeof createClient>;
type Publisher = {
  doPublish(message: unknown): Promise<string>;
  doPublishResponse(uid: string, response: unknown): Promise<void>;
  serverCount(): Promise<number>;
};

/**
 * The Redis streams adapter, with one change: while Redis is unreachable, publishing to the other nodes fails at
 * once instead of waiting in the client's offline queue. The adapter delivers to this node's own sockets only
 * after publishing, so without this a Redis outage would also stop chat between two people on the same node.
 * What the other nodes miss meanwhile, their clients fetch by seq when they notice the gap. Counting the nodes
 * (the first step of every fetchSockets) fails at once too, so callers fall back to this node's sockets instead
 * of waiting for Redis to come back.
 */
export function resilientRedisAdapter(redis: RedisClient, namespace: string) {
  // Deployments sharing one Redis (several agencies' installs, or test runs) keep their streams apart.
  const make = createAdapter(redis, { streamName: `cb:${namespace}:socket.io`, channelPrefix: `cb:${namespace}:socket.io` }) as unknown as (
    nsp: Namespace,
  ) => Publisher;
  return function adapter(nsp: Namespace) {
    const a = make(nsp);
    const publish = a.doPublish.bind(a);
    const respond = a.doPublishResponse.bind(a);
    const count = a.serverCount.bind(a);
    a.doPublish = (message) => (redis.isReady ? publish(message) : Promise.reject(new Error('redis is unreachable')));
    a.doPublishResponse = (uid, response) => (redis.isReady ? respond(uid, response) : Promise.reject(new Error('redis is unreachable')));
    a.serverCount = () => (redis.isReady ? count() : Promise.reject(new Error('redis is unreachable')));
    return a;
  };
}
