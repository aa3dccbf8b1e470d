// Where each node of the topology drawing goes: the pool on top, workers in a grid below.

export interface Placed {
  x: number;
  y: number;
}

export interface Layout {
  width: number;
  height: number;
  pool: Placed;
  cell: number;
  radius: number;
  detailed: boolean; // few enough workers for names and links to stay readable
  workers: Placed[];
}

export const WIDTH = 1000;
const TOP = 150;

export function layout(count: number): Layout {
  const columns = Math.max(1, Math.min(count, Math.ceil(Math.sqrt(count * 2.5))));
  const cell = Math.min(140, WIDTH / columns);
  const rows = Math.ceil(count / columns);
  const used = columns * cell;
  const left = (WIDTH - used) / 2 + cell / 2;
  const workers = Array.from({ length: count }, (_, index) => ({
    x: left + (index % columns) * cell,
    y: TOP + Math.floor(index / columns) * cell + cell / 2,
  }));
  return {
    width: WIDTH,
    height: TOP + rows * cell + 20,
    pool: { x: WIDTH / 2, y: 60 },
    cell,
    radius: Math.max(4, Math.min(22, cell * 0.28)),
    detailed: count <= 40,
    workers,
  };
}
