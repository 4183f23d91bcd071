package ui

import (
	"fmt"
)

// Graph geometry (SVG user units).
const (
	nodeW, nodeH = 168, 40
	gapX, gapY   = 48, 16
	pad          = 4
)

// graph is a run's step graph laid out by topological level: a step's column
// is one more than its deepest predecessor's, so fan-out and fan-in show as
// edges spreading from and joining at a node.
type graph struct {
	W, H  int
	Nodes []graphNode
	Edges []graphEdge
}

type graphNode struct {
	Step       string
	Status     string
	X, Y       int
	TX, TY     int // text anchor
	Attempts   int
	MaxAttempt int
}

type graphEdge struct {
	D      string // SVG path
	Status string // the predecessor's status
}

func layoutGraph(steps []runStep) graph {
	level := map[string]int{}
	known := map[string]bool{}
	for _, s := range steps {
		known[s.Step] = true
	}
	var depth func(name string, seen map[string]bool) int
	byName := map[string]runStep{}
	for _, s := range steps {
		byName[s.Step] = s
	}
	depth = func(name string, seen map[string]bool) int {
		if l, ok := level[name]; ok {
			return l
		}
		if seen[name] {
			return 0 // a cycle cannot be loaded; stay finite anyway
		}
		seen[name] = true
		l := 0
		for _, p := range byName[name].After {
			if known[p] {
				l = max(l, depth(p, seen)+1)
			}
		}
		level[name] = l
		return l
	}
	rows := map[int]int{}
	pos := map[string][2]int{}
	var g graph
	maxRows, maxLevel := 0, 0
	for _, s := range steps {
		l := depth(s.Step, map[string]bool{})
		row := rows[l]
		rows[l]++
		maxRows = max(maxRows, rows[l])
		maxLevel = max(maxLevel, l)
		x, y := pad+l*(nodeW+gapX), pad+row*(nodeH+gapY)
		pos[s.Step] = [2]int{x, y}
		g.Nodes = append(g.Nodes, graphNode{Step: s.Step, Status: s.Cell, X: x, Y: y, TX: x + 10, TY: y + nodeH/2 + 5,
			Attempts: s.Attempts, MaxAttempt: s.MaxAttempts})
	}
	for _, s := range steps {
		to := pos[s.Step]
		for _, p := range s.After {
			from, ok := pos[p]
			if !ok {
				continue
			}
			x1, y1 := from[0]+nodeW, from[1]+nodeH/2
			x2, y2 := to[0], to[1]+nodeH/2
			mid := (x1 + x2) / 2
			g.Edges = append(g.Edges, graphEdge{D: fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x1, y1, mid, y1, mid, y2, x2-6, y2),
				Status: byName[p].Cell})
		}
	}
	g.W = 2*pad + (maxLevel+1)*nodeW + maxLevel*gapX
	g.H = 2*pad + maxRows*nodeH + max(0, maxRows-1)*gapY
	return g
}
