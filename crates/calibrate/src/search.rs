//! Nelder–Mead, the derivative-free simplex search: the objective is a simulation, so
//! there are no gradients, only evaluations, and each one costs milliseconds.
//!
//! Deterministic: the same objective and start always take the same steps.

/// The best point found and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    /// Evaluations spent finding it.
    pub evals: usize,
}

/// [`minimize`], restarted from its result with a fresh simplex while a restart still
/// improves the value by more than `tolerance` (relative): a simplex that collapses along
/// a valley stops short of the minimum, and a new one finds the way on. Stays within
/// `max_evals` in all.
pub fn minimize_restarting<E>(
    mut f: impl FnMut(&[f64]) -> Result<f64, E>,
    x0: &[f64],
    step: f64,
    max_evals: usize,
    tolerance: f64,
) -> Result<Minimum, E> {
    let mut best = minimize(&mut f, x0, step, max_evals, tolerance)?;
    let mut spent = best.evals;
    while spent + x0.len() + 2 < max_evals && !x0.is_empty() {
        let next = minimize(&mut f, &best.x, step, max_evals - spent, tolerance)?;
        spent += next.evals;
        let improved = next.value < best.value - tolerance.max(1e-3) * best.value.abs();
        if next.value < best.value {
            best = next;
        }
        if !improved {
            break;
        }
    }
    best.evals = spent;
    Ok(best)
}

/// Minimizes `f` from `x0`, with a first simplex `step` wide along each axis, for at most
/// `max_evals` evaluations or until the simplex's values agree to `tolerance`.
pub fn minimize<E>(
    mut f: impl FnMut(&[f64]) -> Result<f64, E>,
    x0: &[f64],
    step: f64,
    max_evals: usize,
    tolerance: f64,
) -> Result<Minimum, E> {
    let n = x0.len();
    let mut evals = 0usize;
    let mut eval = |x: &[f64], evals: &mut usize| -> Result<f64, E> {
        *evals += 1;
        let v = f(x)?;
        Ok(if v.is_nan() { f64::INFINITY } else { v })
    };
    let first = eval(x0, &mut evals)?;
    if n == 0 {
        return Ok(Minimum {
            x: Vec::new(),
            value: first,
            evals,
        });
    }
    let mut simplex: Vec<(Vec<f64>, f64)> = vec![(x0.to_vec(), first)];
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] += step;
        let v = eval(&x, &mut evals)?;
        simplex.push((x, v));
    }
    let by_value = |a: &(Vec<f64>, f64), b: &(Vec<f64>, f64)| a.1.total_cmp(&b.1);
    while evals < max_evals {
        simplex.sort_by(by_value);
        let (best, worst) = (simplex[0].1, simplex[n].1);
        if (worst - best).abs() <= tolerance * (best.abs() + tolerance) {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|i| simplex[..n].iter().map(|(x, _)| x[i]).sum::<f64>() / n as f64)
            .collect();
        let toward = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&simplex[n].0)
                .map(|(c, w)| c + t * (w - c))
                .collect()
        };
        let reflected = toward(-1.0);
        let fr = eval(&reflected, &mut evals)?;
        if fr < simplex[0].1 {
            let expanded = toward(-2.0);
            let fe = eval(&expanded, &mut evals)?;
            simplex[n] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (reflected, fr);
        } else {
            let (contracted, fc) = if fr < simplex[n].1 {
                let c = toward(-0.5);
                let fc = eval(&c, &mut evals)?;
                (c, fc)
            } else {
                let c = toward(0.5);
                let fc = eval(&c, &mut evals)?;
                (c, fc)
            };
            if fc < fr.min(simplex[n].1) {
                simplex[n] = (contracted, fc);
            } else {
                // Shrink toward the best point.
                let best_x = simplex[0].0.clone();
                for vertex in simplex.iter_mut().skip(1) {
                    let x: Vec<f64> = best_x
                        .iter()
                        .zip(&vertex.0)
                        .map(|(b, v)| b + 0.5 * (v - b))
                        .collect();
                    let v = eval(&x, &mut evals)?;
                    *vertex = (x, v);
                }
            }
        }
    }
    simplex.sort_by(by_value);
    let (x, value) = simplex.swap_remove(0);
    Ok(Minimum { x, value, evals })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_a_bowl_and_of_rosenbrock() {
        let bowl = |x: &[f64]| -> Result<f64, ()> {
            Ok((x[0] - 1.5).powi(2) + 3.0 * (x[1] + 0.5).powi(2) + (x[2] - 0.25).powi(2))
        };
        let m = minimize(bowl, &[0.0, 0.0, 0.0], 0.3, 2000, 1e-14).unwrap();
        for (got, want) in m.x.iter().zip([1.5, -0.5, 0.25]) {
            assert!((got - want).abs() < 1e-4, "{:?}", m.x);
        }
        let rosenbrock = |x: &[f64]| -> Result<f64, ()> {
            Ok(100.0 * (x[1] - x[0] * x[0]).powi(2) + (1.0 - x[0]).powi(2))
        };
        let m = minimize(rosenbrock, &[-1.2, 1.0], 0.5, 5000, 1e-16).unwrap();
        assert!(
            (m.x[0] - 1.0).abs() < 1e-3 && (m.x[1] - 1.0).abs() < 1e-3,
            "{:?}",
            m.x
        );
    }

    #[test]
    fn stops_at_the_budget_and_passes_errors_on() {
        let mut calls = 0;
        let _ = minimize(
            |x: &[f64]| -> Result<f64, ()> {
                calls += 1;
                Ok(x[0].sin() + x[1].cos())
            },
            &[0.0, 0.0],
            0.5,
            25,
            0.0,
        );
        assert!(calls <= 25 + 2, "{calls} evaluations with a budget of 25");
        let failed = minimize(|_: &[f64]| Err("no"), &[0.0], 0.1, 10, 0.0);
        assert_eq!(failed, Err("no"));
    }

    #[test]
    fn a_restart_goes_on_where_a_collapsed_simplex_stopped() {
        // A long curved valley: with a loose tolerance one simplex stops early.
        let rosenbrock = |x: &[f64]| -> Result<f64, ()> {
            Ok(100.0 * (x[1] - x[0] * x[0]).powi(2) + (1.0 - x[0]).powi(2))
        };
        let once = minimize(rosenbrock, &[-1.2, 1.0], 0.5, 5000, 1e-3).unwrap();
        let restarted = minimize_restarting(rosenbrock, &[-1.2, 1.0], 0.5, 5000, 1e-3).unwrap();
        assert!(restarted.value < once.value, "{restarted:?} vs {once:?}");
        assert!(restarted.evals <= 5000 + 3);
    }
}
