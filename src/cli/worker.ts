// `ringmq worker`: placeholder until its module lands.
export async function run(_argv: string[]): Promise<void> {
  throw new Error('ringmq worker is not built yet')
}
