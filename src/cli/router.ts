// `ringmq router`: placeholder until its module lands.
export async function run(_argv: string[]): Promise<void> {
  throw new Error('ringmq router is not built yet')
}
