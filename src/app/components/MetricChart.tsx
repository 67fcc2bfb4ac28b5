// One small recharts line chart with a title and an empty state.
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { formatCompact } from '../format';

interface LineSpec<T> {
  key: keyof T & string;
  name: string;
  color: string;
  dashed?: boolean;
}

interface Props<T> {
  title: string;
  data: readonly T[];
  x: keyof T & string;
  xLabel?: string;
  lines: readonly LineSpec<T>[];
  format?: (v: number) => string;
  empty: string;
  testId?: string;
}

export function MetricChart<T extends object>({
  title,
  data,
  x,
  xLabel,
  lines,
  format = formatCompact,
  empty,
  testId,
}: Props<T>) {
  const last = data.length > 0 ? data[data.length - 1] : null;
  const lastValue = last ? (last[lines[0].key] as unknown) : null;
  return (
    <figure className="chart" data-testid={testId} data-points={data.length}>
      <figcaption>
        <span>{title}</span>
        {typeof lastValue === 'number' && <span className="chart-last">{format(lastValue)}</span>}
      </figcaption>
      {data.length === 0 ? (
        <div className="chart-empty">{empty}</div>
      ) : (
        <div className="chart-body" role="img" aria-label={`${title} chart, ${data.length} points`}>
          <ResponsiveContainer width="100%" height="100%" minWidth={0}>
            <LineChart data={data as T[]} margin={{ top: 6, right: 12, bottom: 0, left: 0 }}>
              <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
              <XAxis
                dataKey={(d: T) => d[x]}
                type="number"
                domain={['dataMin', 'dataMax']}
                tickFormatter={(v: number) => `${formatCompact(v)}${xLabel ?? ''}`}
                stroke="var(--muted)"
                fontSize={11}
              />
              <YAxis tickFormatter={format} stroke="var(--muted)" fontSize={11} width={64} />
              <Tooltip
                formatter={(v) => (typeof v === 'number' ? format(v) : String(v))}
                contentStyle={{ background: 'var(--surface)', border: '1px solid var(--border)' }}
              />
              {lines.length > 1 && <Legend wrapperStyle={{ fontSize: 11 }} />}
              {lines.map((l) => (
                <Line
                  key={l.key}
                  type="monotone"
                  dataKey={l.key}
                  name={l.name}
                  stroke={l.color}
                  strokeWidth={2}
                  strokeDasharray={l.dashed ? '4 3' : undefined}
                  dot={false}
                  isAnimationActive={false}
                />
              ))}
            </LineChart>
          </ResponsiveContainer>
        </div>
      )}
    </figure>
  );
}
