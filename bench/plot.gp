# Draws bench/out/replay.png from the data files bench.js writes: replay throughput (events/s) of the
# Node adapter, the extension (SQL), the raw ceiling and the earlier raw client against the number of events replayed
# (median of the rounds, bars from the lowest to the highest round), and, when measured, the
# million-event set (small payloads, measured once) as separate points.
# Variables (gnuplot -e): datafile, millionfile, outfile, plottitle, hasmillion, millionlabel.
# datafile columns: events, then median, lowest, highest for the adapter, SQL, the raw ceiling and the
# earlier (page at a time) raw client.

set terminal pngcairo size 1000,700 font "DejaVu Sans,11"
set output outfile
set title plottitle
set xlabel "events replayed" offset 0,0.6
set ylabel "events/s"
set logscale x
set autoscale x
set offsets graph 0.08, graph 0.08, graph 0.05, 0
set yrange [0:*]
set format x "%.0s%c"
set grid ytics lc rgb "#dddddd"
set key outside bottom center horizontal box maxrows 3
set bmargin 7
set pointsize 1.6

raw = 'using 1:8:9:10 with yerrorlines lw 2 pt 7 lc rgb "#888888" title "raw ceiling (pipelined lean client)"'
paged = 'using 1:11:12:13 with yerrorlines lw 1 dt 2 pt 6 lc rgb "#888888" title "earlier raw client (a page at a time)"'
sql = 'using 1:5:6:7 with yerrorlines lw 2 pt 5 lc rgb "#1f77b4" title "SQL: SELECT * (extension)"'
node = 'using 1:2:3:4 with yerrorlines lw 2 pt 9 lc rgb "#d62728" title "Node adapter getAllEvents"'

if (hasmillion) {
  plot datafile @raw, datafile @paged, datafile @sql, datafile @node, \
       millionfile using 1:3 with points pt 6 ps 2 lc rgb "#888888" title "raw ceiling, ".millionlabel, \
       millionfile using 1:2 with points pt 4 ps 2 lc rgb "#1f77b4" title "SQL, ".millionlabel
} else {
  plot datafile @raw, datafile @paged, datafile @sql, datafile @node
}
