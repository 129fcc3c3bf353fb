# bench/plot_pingpong.gp — draw the CSV of `cohort bench pingpong --csv` as a PNG.
#
#   gnuplot -e "csv='pingpong.csv'; out='pingpong.png'" bench/plot_pingpong.gp
#   gnuplot -e "csv='a.csv'; out='a.png'; title='my run'" bench/plot_pingpong.gp
#
# `cohort bench pingpong --plot FILE.png` runs this script (the build copies it
# next to the cohort executable), so a plot can always be redrawn from its CSV.
#
# Two panels: one-way latency against message size (log-log) and bandwidth
# against size (log size, linear bandwidth). One line per system and transport:
# the colour says the transport, the dash pattern and point shape the system
# (cohort solid with filled circles, references dashed or dotted). Size 0 has
# no place on a log axis and is left out. The CSV rows may come in any order;
# awk and sort pick each series out. Needs gnuplot 5 with the pngcairo terminal.

if (!exists("csv")) {
  print "usage: gnuplot -e \"csv='FILE.csv'; out='FILE.png'\" plot_pingpong.gp"
  exit status 2
}
if (!exists("out")) out = csv . ".png"
if (!exists("title")) title = "cohort bench pingpong: " . csv

# "transport|system" for every series, grouped by transport, cohort first.
series = system("awk -F, 'NR > 1 && $1 != \"system\" && NF == 5 { print $2 \"|\" ($1 == \"cohort\" ? 0 : 1) \"|\" $1 }' '" . csv . "' | sort -u | awk -F'|' '{ print $1 \"|\" $3 }'")
transports = system("awk -F, 'NR > 1 && $1 != \"system\" && NF == 5 { print $2 }' '" . csv . "' | sort -u")
n = words(series)
if (n == 0) {
  print "plot_pingpong.gp: no data rows in " . csv
  exit status 1
}

# Colour-blind-safe colours, one per transport (Okabe and Ito's palette).
colours = "#0072B2 #D55E00 #009E73 #CC79A7 #E69F00 #56B4E9 #000000 #999999"
bar(s) = strstrt(s, "|")
transport_of(s) = s[1:bar(s) - 1]
system_of(s) = s[bar(s) + 1:]
index_in(list, w, i) = i > words(list) ? 1 : (word(list, i) eq w ? i : index_in(list, w, i + 1))
colour(i) = word(colours, (index_in(transports, transport_of(word(series, i)), 1) - 1) % 8 + 1)
is_cohort(i) = system_of(word(series, i)) eq "cohort"
dash(i) = is_cohort(i) ? 1 : (system_of(word(series, i)) eq "openmpi" ? 2 : \
          (system_of(word(series, i)) eq "ucx_perftest" ? 3 : 4))
point(i) = is_cohort(i) ? 7 : (system_of(word(series, i)) eq "openmpi" ? 4 : \
           (system_of(word(series, i)) eq "ucx_perftest" ? 8 : 6))
width(i) = is_cohort(i) ? 2.5 : 1.5
name(i) = system_of(word(series, i)) . " / " . transport_of(word(series, i))
# The rows of series i and one metric, as "size value" lines sorted by size.
rows(i, metric) = "< awk -F, -v s='" . system_of(word(series, i)) . "' -v t='" . \
                  transport_of(word(series, i)) . "' -v m='" . metric . \
                  "' '$1 == s && $2 == t && $4 == m && $3 > 0 { print $3, $5 }' '" . csv . \
                  "' | sort -n"

# The size axis spans the data with a little room either side.
stats "< awk -F, 'NR > 1 && NF == 5 && $3 > 0 { print $3 }' '" . csv . "'" using 1 nooutput
xmin = STATS_min / 1.4
xmax = STATS_max * 1.4

# Room for the legend under both panels: 3 or 4 entries a row.
key_rows = int((n + 3) / 4)
bottom = 0.14 + 0.035 * key_rows
set terminal pngcairo size 1500,(640 + 26 * key_rows) noenhanced font "sans,11"
set output out
set multiplot title title font ",13"
set tmargin at screen 0.90
set bmargin at screen bottom
set grid xtics ytics mytics lc rgb "#c8c8c8" lw 1, lc rgb "#e8e8e8" lw 1
set logscale x 2
set xrange [xmin:xmax]
set xtics ("1 B" 1, "16 B" 16, "256 B" 256, "4 KiB" 4096, "64 KiB" 65536, \
           "1 MiB" 1048576, "16 MiB" 16777216, "256 MiB" 268435456)
set xlabel "message size"

set lmargin at screen 0.075
set rmargin at screen 0.48
set title "one-way latency (half the median round trip)"
set logscale y
set ylabel "latency (µs, log scale)"
set key at screen 0.5, (bottom - 0.09) center top vertical maxrows key_rows Left reverse \
    samplen 3 width 2 spacing 1.2 font ",10" box
plot for [i=1:n] rows(i, "latency_us") using 1:2 with linespoints \
     lc rgb colour(i) dt dash(i) pt point(i) ps 0.9 lw width(i) title name(i)

set lmargin at screen 0.56
set rmargin at screen 0.98
set title "bandwidth (size / one-way latency)"
unset logscale y
set yrange [0:*]
set ylabel "bandwidth (GB/s = 10^9 bytes/s)"
unset key
plot for [i=1:n] rows(i, "bandwidth_MBps") using 1:($2 / 1000) with linespoints \
     lc rgb colour(i) dt dash(i) pt point(i) ps 0.9 lw width(i) notitle

unset multiplot
