// Aedes as a bench target: the few lines a user would write. Prints one JSON "ready" line
// with its address, like ringmq's processes; SIGTERM closes it.
//   node dist/bench/servers/aedes-server.js [port]

import net from 'node:net'
import { Aedes } from 'aedes'

const port = Number(process.argv[2] ?? 0)
const aedes = await Aedes.createBroker()
// same as Mosquitto's set_tcp_nodelay: small PUBLISH frames are not held back by Nagle
const server = net.createServer({ noDelay: true }, aedes.handle)
server.listen(port, '127.0.0.1', () => {
  const addr = server.address() as net.AddressInfo
  process.stdout.write(JSON.stringify({ name: 'aedes', msg: 'ready', mqtt: `127.0.0.1:${addr.port}` }) + '\n')
})
const stop = (): void => {
  server.close()
  aedes.close(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
