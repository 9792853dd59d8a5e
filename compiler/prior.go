package compiler

// EstimatePrior is estimatePrior for callers outside the compiler (paw
// eval, pawdev quality): the label shares of unlabelled lines, from
// posteriors computed under prior (nil: uniform).
func EstimatePrior(posteriors [][]float64, prior []float64) []float64 {
	if len(posteriors) == 0 {
		return nil
	}
	return estimatePrior(Reweight(posteriors, prior, nil))
}

// Reweight moves posteriors computed under prior from (nil: uniform) to
// rates to (nil: uniform), by Bayes' rule.
func Reweight(posteriors [][]float64, from, to []float64) [][]float64 {
	k := len(posteriors[0])
	ratio := make([]float64, k)
	for j := range ratio {
		f, t := 1/float64(k), 1/float64(k)
		if from != nil {
			f = from[j]
		}
		if to != nil {
			t = to[j]
		}
		ratio[j] = clampRate(t) / clampRate(f)
	}
	out := make([][]float64, len(posteriors))
	for i, p := range posteriors {
		q := make([]float64, k)
		var z float64
		for j := range q {
			q[j] = p[j] * ratio[j]
			z += q[j]
		}
		for j := range q {
			if z > 0 {
				q[j] /= z
			} else {
				q[j] = 1 / float64(k)
			}
		}
		out[i] = q
	}
	return out
}
