// `ringmq ctl`: placeholder until its module lands.
export async function run(_argv: string[]): Promise<void> {
  throw new Error('ringmq ctl is not built yet')
}
