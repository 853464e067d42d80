package web

import (
	"fmt"
	"html"
	"html/template"
	"slices"
	"strings"
	"time"
)

// chartDays is the span of the overview's charts.
const chartDays = 30

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 720, 220
	chartLeft      = 40
	chartBottom    = 30
	chartTop       = 24
)

// palette colours series in order; chosen to stay apart for colour-blind
// readers (Okabe–Ito).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000"}

// series is one coloured part of a stacked bar chart: a value per bar.
type series struct {
	Name   string
	Values []int
}

// stackedBars draws bars (one per label) stacked by series, with a legend.
// Every text is escaped; the result is safe to put into a page.
func stackedBars(title string, labels []string, ss []series) template.HTML {
	top := 1
	for i := range labels {
		sum := 0
		for _, s := range ss {
			sum += s.Values[i]
		}
		top = max(top, sum)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`,
		chartW, chartH, html.EscapeString(title))
	plotH := float64(chartH - chartBottom - chartTop)
	barW := float64(chartW-chartLeft) / float64(max(len(labels), 1))
	fmt.Fprintf(&b, `<text x="0" y="%d" class="axis">%d</text><text x="0" y="%d" class="axis">0</text>`, chartTop+8, top, chartH-chartBottom)
	for i, l := range labels {
		y := float64(chartH - chartBottom)
		for k, s := range ss {
			h := plotH * float64(s.Values[i]) / float64(top)
			if h == 0 {
				continue
			}
			y -= h
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %d</title></rect>`,
				chartLeft+float64(i)*barW+1, y, barW-2, h, palette[k%len(palette)], html.EscapeString(l), html.EscapeString(s.Name), s.Values[i])
		}
		if i%7 == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="axis">%s</text>`, chartLeft+float64(i)*barW, chartH-10, html.EscapeString(l))
		}
	}
	legend(&b, ss)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func legend(b *strings.Builder, ss []series) {
	x := chartLeft
	for k, s := range ss {
		fmt.Fprintf(b, `<rect x="%d" y="4" width="10" height="10" fill="%s"/><text x="%d" y="13" class="legend">%s</text>`,
			x, palette[k%len(palette)], x+14, html.EscapeString(s.Name))
		x += 24 + 8*len(s.Name)
	}
}

// dayBuckets returns the labels of the last n days up to now and a
// function that places a time in one (-1: outside).
func dayBuckets(now time.Time, n int) ([]string, func(time.Time) int) {
	first := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -(n - 1))
	labels := make([]string, n)
	for i := range labels {
		labels[i] = first.AddDate(0, 0, i).Format("01-02")
	}
	return labels, func(t time.Time) int {
		if t.Before(first) {
			return -1
		}
		i := int(t.UTC().Sub(first) / (24 * time.Hour))
		if i >= n {
			return -1
		}
		return i
	}
}

// countByDay turns (key, time) pairs into one series per key, sorted.
func countByDay(now time.Time, items []keyedTime) ([]string, []series) {
	labels, bucket := dayBuckets(now, chartDays)
	byKey := map[string][]int{}
	for _, it := range items {
		i := bucket(it.at)
		if i < 0 {
			continue
		}
		if byKey[it.key] == nil {
			byKey[it.key] = make([]int, chartDays)
		}
		byKey[it.key][i]++
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ss := make([]series, len(keys))
	for i, k := range keys {
		ss[i] = series{Name: k, Values: byKey[k]}
	}
	return labels, ss
}

type keyedTime struct {
	key string
	at  time.Time
}
