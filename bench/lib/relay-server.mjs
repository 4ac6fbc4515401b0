// B1 / B2 floors as their own process (like the product's server): a bare `ws` relay or a bare Socket.IO relay.
//   node relay-server.mjs ws|sio PORT
// Receivers join rooms; a sender's message is relayed to its room and acknowledged to the sender.
// GET /metrics answers this process's event-loop delay since the previous call (same shape as the product's).
import { createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../server/package.json', import.meta.url));
const [kind, portArg] = process.argv.slice(2);
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
const http = createServer((req, res) => {
  if (req.url === '/metrics') {
    const ms = (ns) => Math.max(0, Math.round((ns - 5e6) / 1e4) / 100); // minus the 5 ms sampling interval
    const body = {
      eventLoopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max), samples: loop.count },
      memory: process.memoryUsage(),
    };
    loop.reset();
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify(body));
  }
  res.statusCode = 404;
  res.end();
});

if (kind === 'ws') {
  const { WebSocketServer } = require('ws');
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 64 * 1024 });
  const rooms = new Map(); // room -> Set<ws>
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const s = data.toString();
      if (s.charCodeAt(0) === 74 /* J */) {
        const room = s.slice(2);
        let set = rooms.get(room);
        if (!set) rooms.set(room, (set = new Set()));
        set.add(ws);
        ws.send('J');
        return;
      }
      // M|<json>: parse (as a real relay must, to route and validate), relay to the room, ack the sender.
      const msg = JSON.parse(s.slice(2));
      const out = `M|${JSON.stringify(msg)}`;
      for (const peer of rooms.get(msg.conversationId) ?? []) peer.send(out);
      ws.send(`A|${msg.clientMessageId}`);
    });
  });
} else {
  const { Server } = require('socket.io');
  const io = new Server(http, {
    transports: ['websocket'],
    perMessageDeflate: false,
    maxHttpBufferSize: 64 * 1024,
    serveClient: false,
  });
  io.on('connection', (socket) => {
    socket.on('join', (room, ack) => {
      socket.join(room);
      ack?.(true);
    });
    socket.on('msg', (msg, ack) => {
      socket.to(msg.conversationId).emit('msg', msg);
      ack?.({ ok: true });
    });
  });
}
http.listen(Number(portArg), '127.0.0.1', () => process.send?.({ ready: true }));
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
