// Package drain is a baseline for paw's template miner: Drain (He, Zhu,
// Zheng and Lyu, "Drain: An Online Log Parsing Approach with Fixed Depth
// Tree", ICWS 2017) as its paper describes it, with the generic
// preprocessing of the Loghub benchmark (a token holding a digit is a
// variable), and the grouping accuracy the benchmark scores parsers by.
// It serves `pawdev quality`, not the product.
package drain

import (
	"strings"
	"unicode"
)

// Parser is a Drain tree. Depth counts the root and the length layer, so
// Depth-2 layers route by leading tokens.
type Parser struct {
	Depth      int     // default 4
	Similarity float64 // default 0.5
	MaxChild   int     // default 100
	root       map[int]*node
}

type node struct {
	children map[string]*node
	clusters []*Cluster
}

// Cluster is one log group.
type Cluster struct {
	Template []string
	ID       int
}

// New returns a parser with the paper's parameters.
func New(depth int, sim float64) *Parser {
	return &Parser{Depth: depth, Similarity: sim, MaxChild: 100, root: map[int]*node{}}
}

const wildcard = "<*>"

func hasDigit(s string) bool {
	for _, r := range s {
		if unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

// Add parses a line's content and returns its cluster.
func (p *Parser) Add(content string) *Cluster {
	toks := strings.Fields(content)
	for i, t := range toks {
		if hasDigit(t) {
			toks[i] = wildcard
		}
	}
	ln := p.root[len(toks)]
	if ln == nil {
		ln = &node{children: map[string]*node{}}
		p.root[len(toks)] = ln
	}
	cur := ln
	for d := 0; d < p.Depth-2 && d < len(toks); d++ {
		t := toks[d]
		next, ok := cur.children[t]
		if !ok {
			if t != wildcard && len(cur.children) < p.MaxChild {
				next = &node{children: map[string]*node{}}
				cur.children[t] = next
			} else {
				next = cur.children[wildcard]
				if next == nil {
					next = &node{children: map[string]*node{}}
					cur.children[wildcard] = next
				}
			}
		}
		cur = next
	}
	var best *Cluster
	bestSim, bestPar := -1.0, -1
	for _, c := range cur.clusters {
		same, par := 0, 0
		for i, t := range c.Template {
			if t == wildcard {
				par++
				continue
			}
			if t == toks[i] {
				same++
			}
		}
		sim := 1.0
		if len(toks) > 0 {
			sim = float64(same) / float64(len(toks))
		}
		if sim > bestSim || (sim == bestSim && par > bestPar) {
			best, bestSim, bestPar = c, sim, par
		}
	}
	if best != nil && bestSim >= p.Similarity {
		for i, t := range toks {
			if best.Template[i] != t {
				best.Template[i] = wildcard
			}
		}
		return best
	}
	c := &Cluster{Template: toks, ID: len(cur.clusters)}
	cur.clusters = append(cur.clusters, c)
	return c
}

// GroupingAccuracy is the Loghub benchmark's measure: the share of lines
// whose predicted group holds exactly the lines of their reference group.
func GroupingAccuracy(pred, ref []string) float64 {
	if len(pred) == 0 {
		return 0
	}
	byPred := map[string][]int{}
	byRef := map[string][]int{}
	for i := range pred {
		byPred[pred[i]] = append(byPred[pred[i]], i)
		byRef[ref[i]] = append(byRef[ref[i]], i)
	}
	correct := 0
	for _, lines := range byPred {
		r := byRef[ref[lines[0]]]
		if len(r) != len(lines) {
			continue
		}
		same := true
		for _, i := range lines {
			if ref[i] != ref[lines[0]] {
				same = false
				break
			}
		}
		if same {
			correct += len(lines)
		}
	}
	return float64(correct) / float64(len(pred))
}
