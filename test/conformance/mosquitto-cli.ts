// Drives Debian's mosquitto_sub / mosquitto_pub (mosquitto-clients) against a target. Every
// process is tracked and killed by PID in `killCliProcesses()`.

import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { Inbox } from './clients.js'
import type { Target } from './target.js'

const SUB = process.env.MOSQUITTO_SUB ?? 'mosquitto_sub'
const PUB = process.env.MOSQUITTO_PUB ?? 'mosquitto_pub'
const running = new Set<ChildProcess>()

export interface CliMessage {
  topic: string
  qos: number
  retain: boolean
  userProperties: string
  contentType: string
  payload: string
}

export interface CliSub {
  child: ChildProcess
  messages: Inbox<CliMessage>
  /** resolves once mosquitto_sub logged its SUBACK */
  subscribed: Promise<void>
  exited: Promise<number | null>
  output(): string
}

function track(child: ChildProcess): Promise<number | null> {
  running.add(child)
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      running.delete(child)
      resolve(code)
    }),
  )
}

const FIELDS = 'MSG\t%t\t%q\t%r\t%P\t%C\t%p'

/** mosquitto_sub -d with a machine-readable line per message; exits after -C/-W if given. */
export function startSub(target: Target, args: string[]): CliSub {
  // stdbuf: mosquitto_sub block-buffers stdout on a pipe; line buffering lets us see SUBACK
  const child = spawn('stdbuf', ['-oL', SUB, '-h', target.host, '-p', String(target.port), '-d', '-F', FIELDS, '-W', '30', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = track(child)
  const messages = new Inbox<CliMessage>()
  let out = ''
  let onSuback: () => void = () => {}
  const subscribed = new Promise<void>((resolve, reject) => {
    onSuback = resolve
    void exited.then((code) => reject(new Error(`mosquitto_sub exited (${code}) before SUBACK: ${out}`)))
  })
  subscribed.catch(() => {}) // observed by the test that awaits it
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  createInterface({ input: child.stdout! }).on('line', (line) => {
    out += line + '\n'
    if (/received SUBACK/.test(line)) onSuback()
    if (!line.startsWith('MSG\t')) return
    const [, topic, qos, retain, userProperties, contentType, ...payload] = line.split('\t')
    messages.push({ topic: topic!, qos: Number(qos), retain: retain === '1', userProperties: userProperties!, contentType: contentType!, payload: payload.join('\t') })
  })
  return { child, messages, subscribed, exited, output: () => out }
}

/** Runs mosquitto_pub to completion; resolves with its exit code and output. */
export async function pub(target: Target, args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(PUB, ['-h', target.host, '-p', String(target.port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()))
  const code = await track(child)
  return { code, output }
}

export async function killCliProcesses(): Promise<void> {
  await Promise.all(
    [...running].map(
      (c) => new Promise<void>((resolve) => {
        c.once('exit', () => resolve())
        c.kill('SIGKILL')
      }),
    ),
  )
}
