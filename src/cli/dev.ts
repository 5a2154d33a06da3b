// `ringmq dev`: placeholder until its module lands.
export async function run(_argv: string[]): Promise<void> {
  throw new Error('ringmq dev is not built yet')
}
