//! One training step's loss and gradient, data-parallel on the CPU: the batch of Algorithm 1
//! split into equal shards whose denoising losses and gradients are computed on parallel
//! threads and averaged ([`crate::checkpoint::TrainConfig::threads`]; one thread computes the
//! whole batch's directly).

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::{backend::AutodiffBackend, Tensor};

use super::loss::{denoising_loss, scalar, Batch};
use super::network::ScoreNetwork;
use crate::schedule::NoiseSchedule;

/// One training step's loss and gradient: on one thread, the whole batch's; with the batch split
/// into `threads` equal shards, each on its own thread with its own copy of the parameters
/// (fresh autodiff leaves with the same parameter ids, so the shards' graphs share nothing and
/// run in parallel), the mean of the shards' losses and of their gradients, which are the whole
/// batch's to rounding.
pub fn sharded_step<B: AutodiffBackend, N>(
    model: &N,
    cfg: &N::Config,
    (xt, ts, eps): Batch<'_>,
    threads: usize,
    row: usize,
    schedule: &dyn NoiseSchedule,
    device: &B::Device,
) -> (f32, GradientsParams)
where
    N: ScoreNetwork<B> + AutodiffModule<B>,
    N::Config: Sync,
{
    let gradient = |model: &N, batch: Batch<'_>| {
        let l = denoising_loss(model, cfg, batch, row, schedule, device);
        (
            scalar(l.clone()),
            GradientsParams::from_grads(l.backward(), model),
        )
    };
    if threads <= 1 {
        return gradient(model, (xt, ts, eps));
    }
    let per = ts.len() / threads;
    let results: Vec<(f32, GradientsParams)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let rows = i * per * row..(i + 1) * per * row;
                let shard = (&xt[rows.clone()], &ts[i * per..(i + 1) * per], &eps[rows]);
                let copy = N::from_inner(model.valid());
                let gradient = &gradient;
                scope.spawn(move || gradient(&copy, shard))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let value = results.iter().map(|(v, _)| v).sum::<f32>() / threads as f32;
    let mut grads = results.into_iter().map(|(_, g)| g).collect::<Vec<_>>();
    let mut mean = GradientsParams::new();
    model.visit(&mut MeanGradients::<B> {
        shards: &mut grads,
        mean: &mut mean,
        _backend: std::marker::PhantomData,
    });
    (value, mean)
}

/// Averages the shards' gradients parameter by parameter into `mean`.
struct MeanGradients<'a, B> {
    shards: &'a mut [GradientsParams],
    mean: &'a mut GradientsParams,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> burn::module::ModuleVisitor<B> for MeanGradients<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
        let n = self.shards.len() as f32;
        let sum = self
            .shards
            .iter_mut()
            .filter_map(|g| g.remove::<B::InnerBackend, D>(param.id))
            .reduce(|a, b| a + b);
        if let Some(sum) = sum {
            self.mean.register(param.id, sum / n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{default_device, DefaultBackend, NoiseSource};
    use crate::score::ring_conv::{assert_close, small, RingConv};
    use burn::module::Module;

    type B = DefaultBackend;

    /// Every parameter's gradient, flattened in visiting order.
    struct Collect<'a>(&'a GradientsParams, Vec<Vec<f64>>);

    impl burn::module::ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            let g = self
                .0
                .get::<<B as AutodiffBackend>::InnerBackend, D>(param.id)
                .expect("every parameter has a gradient");
            self.1.push(crate::backend::to_host(g));
        }
    }

    /// Split into 2 and 4 shards, the step's loss and every parameter's gradient are the whole
    /// batch's, to single-precision rounding (relative 1e-4 of the gradient's largest entry).
    #[test]
    fn shards_reproduce_the_whole_batch_gradient() {
        let device = default_device();
        let cfg = small(10);
        let model = RingConv::<B>::new(&cfg, &device).unwrap();
        let (n, row) = (8, 3 * 10);
        let mut noise = NoiseSource::new(3);
        let host = |x: Tensor<B, 1>| crate::backend::to_host_f32(x);
        let xt = host(noise.normal::<B, 1>([n * row], &device));
        let eps = host(noise.normal::<B, 1>([n * row], &device));
        let ts: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
        let batch = (&xt[..], &ts[..], &eps[..]);
        let schedule = crate::schedule::VpCosine::default();
        let l = denoising_loss(&model, &cfg, batch, row, &schedule, &device);
        let whole_loss = scalar(l.clone());
        let whole = GradientsParams::from_grads(l.backward(), &model);
        let mut reference = Collect(&whole, Vec::new());
        model.visit(&mut reference);
        for threads in [2, 4] {
            let (loss, grads) = sharded_step(&model, &cfg, batch, threads, row, &schedule, &device);
            assert!(
                (loss - whole_loss).abs() <= 1e-5 * whole_loss,
                "{loss} {whole_loss}"
            );
            let mut got = Collect(&grads, Vec::new());
            model.visit(&mut got);
            assert_eq!(got.1.len(), reference.1.len());
            for (g, r) in got.1.iter().zip(&reference.1) {
                assert_close(g, r, 1e-4, &format!("{threads} shards"));
            }
        }
    }
}
