"""The evaluation suite end to end: the full-resolution protocol scores
what colorize writes, reference networks read from files give the
reference implementations' numbers, presets record their protocol, and
compare refuses to mix protocols."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image
import pytest
from skimage.metrics import peak_signal_noise_ratio
import torch

from colorjax import color
from colorjax import colorize
from colorjax import evaluate
from colorjax import evaluation
from colorjax import results
from colorjax import sharding
from colorjax import workdir as workdir_lib
from colorjax.data import pipeline
from colorjax.data import preprocess
from colorjax.evaluators import base

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _smooth_photo(rng, h, w):
  yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
  channels = [np.sin(6 * xx * rng.uniform(0.5, 2) + rng.uniform(0, 6)) *
              np.cos(4 * yy * rng.uniform(0.5, 2)) for _ in range(3)]
  return np.rint((np.stack(channels, -1) * 0.4 + 0.5) * 255).astype(np.uint8)


def test_full_resolution_protocol_scores_what_colorize_writes(
    tiny_run, tmp_path, rng):
  """evaluate --resolution=full on a folder == PSNR of colorize's files
  (--upsample=bilinear, the protocol's upsampling) against the photos (up
  to colorize's 8-bit rounding), each at its own
  size: a 1100-wide photo (wider than the 1024 canvas of before) is not
  shrunk."""
  workdir, _ = tiny_run
  photos, outputs = tmp_path / 'photos', tmp_path / 'out'
  photos.mkdir()
  sizes = [(40, 56), (48, 48), (61, 37), (40, 1100)]
  for i, (h, w) in enumerate(sizes):
    Image.fromarray(_smooth_photo(rng, h, w)).save(photos / f'{i}.png')
  _, failures = colorize.colorize(workdir, [str(photos)], str(outputs),
                                  upsample='bilinear')
  assert not failures
  psnrs = []
  for i in range(len(sizes)):
    source = np.asarray(Image.open(photos / f'{i}.png')) / 255.0
    written = sorted(p for p in os.listdir(outputs) if p.startswith(f'{i}'))
    colorized = np.asarray(Image.open(outputs / written[0])) / 255.0
    assert colorized.shape == source.shape
    psnrs.append(peak_signal_noise_ratio(source, colorized, data_range=1.0))
  metrics = evaluate.evaluate_workdir(workdir, image_folder=str(photos),
                                      resolution='full')
  assert metrics['num_images'] == 4
  assert metrics['evals']['folder']['num_downscaled'] == 0
  assert metrics['protocol']['folder']['resolution'] == 'full'
  assert metrics['protocol']['folder']['canvas'] == 0       # none
  assert metrics['protocol']['folder']['model_input'] == 'resize_aspect(32, 32)'
  assert metrics['psnr'] == pytest.approx(np.mean(psnrs), abs=0.1)
  # The model-resolution protocol scores other pixels: another number.
  model = evaluate.evaluate_workdir(workdir, image_folder=str(photos),
                                    resolution='model')
  assert abs(model['psnr'] - metrics['psnr']) > 0.01


def test_canvas_helpers_resize_onto_the_real_region():
  rng = np.random.default_rng(0)
  ab = jnp.asarray(rng.normal(size=(2, 8, 8, 2)), jnp.float32)
  hw = jnp.asarray([[16, 24], [8, 8]], jnp.int32)
  up = base.upsample_to_canvas(ab, hw, (32, 32))
  np.testing.assert_allclose(
      np.asarray(up[0, :16, :24]),
      np.asarray(jax.image.resize(ab[0], (16, 24, 2), 'linear')), atol=1e-5)
  np.testing.assert_allclose(np.asarray(up[1, :8, :8]), np.asarray(ab[1]),
                             atol=1e-5)
  mask = np.asarray(base.canvas_mask(hw, (32, 32)))
  assert mask[0].sum() == 16 * 24 and mask[1].sum() == 64
  # Real region back to a fixed size: the inverse of the upsampling above.
  down = base.crop_resize(up, hw[:1].repeat(2, 0), 8)
  assert down.shape == (2, 8, 8, 2)
  center = base.crop_resize(jnp.ones((1, 20, 30, 3)), None, 14, 'center')
  np.testing.assert_allclose(np.asarray(center), 1.0, atol=1e-5)


class _OracleMethod:
  """A stand-in method whose prediction is a known function of the truth."""
  predict_keys = ('gray',)
  samples = False

  def __init__(self, config, factor):
    self.config = config
    self.factor = factor

  def predict(self, state, batch):
    del state
    return {'ab': batch['ab'] * self.factor}


def _oracle_run(config, evals, factor):
  method = _OracleMethod(config, factor)
  runner = evaluation.Evaluation(method, config, sharding.data_mesh(),
                                 ml_collections.ConfigDict(evals))
  return runner, runner.run({})


def _model_resolution_pairs(config, factor):
  """The (colorized, true) RGB pairs at the model resolution, built with
  numpy from the data source, independently of the evaluators."""
  source = pipeline.data_source(config.data.dataset, config.data.eval_split,
                                config.data.data_dir)
  ops = preprocess.parse(config.data.preprocess_eval)
  pairs = []
  for index in range(len(source)):
    example = preprocess.apply(ops, source[index])
    lab = np.concatenate([example['l'], example['ab'] *
                          config.data.ab_scale], -1)
    pred = lab.copy()
    pred[..., 1:] *= factor
    pairs.append((color.lab_to_rgb_numpy(pred), color.lab_to_rgb_numpy(lab)))
  return pairs


def test_lpips_and_fid_equal_the_reference_implementations(
    shapes_data_dir, tmp_path):
  import test_pretrained  # pylint: disable=g-import-not-at-top
  import test_pretrained_fid_deeplab as fid_test  # pylint: disable=g-import-not-at-top
  import torch_random  # pylint: disable=g-import-not-at-top
  from conftest import tiny_config  # pylint: disable=g-import-not-at-top
  lpips_model = test_pretrained._lpips_reference()    # pylint: disable=protected-access
  lpips_path = str(tmp_path / 'lpips_alex.pth')
  torch.save(lpips_model.state_dict(), lpips_path)
  torch.manual_seed(0)
  inception = fid_test.TorchFIDInception3()
  fid_test._he_init(inception, seed=0)                  # pylint: disable=protected-access
  inception = torch_random.randomise(inception, seed=1)
  inception_path = str(tmp_path / 'inception.pth')
  torch.save(inception.state_dict(), inception_path)

  config = tiny_config(shapes_data_dir)
  config.data.eval_max_batches = -1
  factor = 0.5
  runner, results = _oracle_run(config, {'p': dict(
      type='perceptual', lpips=lpips_path, fid_inception=inception_path,
      lpips_size=32)}, factor)
  got = results['p']

  pairs = _model_resolution_pairs(config, factor)
  pred = np.stack([p for p, _ in pairs]).astype(np.float32)
  true = np.stack([t for _, t in pairs]).astype(np.float32)
  nchw = lambda x: torch.from_numpy(x.transpose(0, 3, 1, 2).copy())  # pylint: disable=unnecessary-lambda-assignment
  with torch.no_grad():
    lpips = lpips_model(nchw(pred * 2 - 1), nchw(true * 2 - 1)).reshape(-1)
    features = [inception.fid_features(nchw(x)).numpy().astype(np.float64)
                for x in (pred, true)]
  assert got['lpips'] == pytest.approx(float(lpips.mean()), rel=1e-4)
  # pytorch-fid's formula on the reference's features, with tr sqrtm(S1 S2)
  # as the nuclear norm of the 8x8 A B^T (S1 = A^T A, S2 = B^T B: S1 S2's
  # nonzero spectrum is (A B^T)(A B^T)^T's), exact, where scipy's sqrtm of
  # the 2048x2048 product took 12 s; tests/test_metrics_suite.py checks
  # frechet_distance against scipy's sqrtm itself.
  mu = [f.mean(0) for f in features]
  sigma = [np.cov(f, rowvar=False) for f in features]
  a, b = [(f - f.mean(0)) / np.sqrt(len(f) - 1) for f in features]
  trace_sqrt = np.sum(np.linalg.svd(a @ b.T, compute_uv=False))
  fid = (np.sum((mu[0] - mu[1]) ** 2) + np.trace(sigma[0]) +
         np.trace(sigma[1]) - 2 * trace_sqrt)
  assert got['fid_num_images'] == len(pairs)
  assert got['fid'] == pytest.approx(fid, rel=1e-3, abs=1e-4)
  assert set(runner.evaluators['p'].weights) == {lpips_path, inception_path}


def test_semantic_interpretability_with_a_perfect_colorization(
    shapes_data_dir, tmp_path):
  import test_pretrained  # pylint: disable=g-import-not-at-top
  from conftest import tiny_config  # pylint: disable=g-import-not-at-top
  # A torchvision-layout VGG16 with small widths (the registry reads them
  # from the file); the full-size networks are test_pretrained's.
  torch.manual_seed(0)
  model = test_pretrained.TorchVGG(
      num_classes=7, cfg=[4, 4, 'M', 8, 8, 'M', 8, 8, 8, 'M', 8, 8, 8, 'M',
                          8, 8, 8, 'M'],
      fc=(16, 16)).eval()
  path = str(tmp_path / 'vgg16.pth')
  torch.save(model.state_dict(), path)
  config = tiny_config(shapes_data_dir)
  evals = {'s': dict(type='semantic_interpretability',
                     classifier=f'vgg16:{path}')}
  _, perfect = _oracle_run(config, evals, 1.0)
  assert perfect['s']['top1_agreement'] == 1.0
  _, gray = _oracle_run(config, evals, 0.0)
  assert gray['s']['top1_agreement'] == gray['s']['top1_agreement_gray']
  with pytest.raises(ValueError, match='NAME:PATH'):
    _oracle_run(config, {'s': dict(type='semantic_interpretability',
                                   classifier=path)}, 1.0)
  # With image labels (multi-hot tags -> the first tagged class): accuracy
  # of the colorized, ground-truth and gray images; a perfect colorization
  # is exactly as accurate as the ground truth.
  plain_eval = config.data.preprocess_eval
  config.data.preprocess_eval += '|multi_hot(7)'
  evals['s']['label_key'] = 'labels'
  _, tagged = _oracle_run(config, evals, 1.0)
  assert {'top1', 'top1_gt', 'top1_gray'} <= set(tagged['s'])
  assert tagged['s']['top1'] == tagged['s']['top1_gt']
  # The same images and labels as a labelled image folder in ImageNet
  # val's layout (one folder per class, sorted: data.image_folder), gray:
  # the ground truth's accuracy is the dataset's, the gray's its own.
  source = pipeline.data_source(config.data.dataset, config.data.eval_split,
                                config.data.data_dir)
  tree = tmp_path / 'val'
  for k in range(7):
    (tree / f'n0{k}').mkdir(parents=True)
  for index in range(len(source)):
    tags = [t for t in np.asarray(source[index]['labels']) if t < 7]
    Image.fromarray(source[index]['image']).save(
        tree / f'n0{min(tags, default=0)}' / f'{index:03d}.png')
  _, folder = _oracle_run(config, {'s': dict(
      evals['s'], dataset='image_folder', path=str(tree), labels='folders',
      label_key='label', preprocess=plain_eval)}, 0.0)
  assert folder['s']['top1_gt'] == pytest.approx(tagged['s']['top1_gt'])
  assert folder['s']['top1'] == folder['s']['top1_gray']


def test_presets_record_their_protocol_and_compare_refuses_mixing(
    tiny_run, tmp_path):
  workdir, _ = tiny_run
  out = tmp_path / 'eval'
  result = subprocess.run(
      [sys.executable, '-m', 'colorjax.evaluate', f'--workdir={workdir}',
       '--preset=paper001', f'--output_dir={out}'],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads((out / 'metrics.json').read_text())
  assert metrics['preset'] == 'paper001'
  assert metrics['protocol']['colour']['resolution'] == 'full'
  # At the photo's aspect: each photo at its own size, no canvas.
  assert metrics['protocol']['colour']['canvas'] == 0
  assert metrics['protocol']['colour']['model_input'] == (
      'resize_aspect(32, 32)')
  assert metrics['colorjax_version'] and metrics['num_images'] > 0
  assert set(metrics['skipped']) == {'perceptual', 'semantic'}
  for key in ('psnr_channel_mean', 'ssim', 'l2_ab', 'l2ab_auc'):
    assert np.isfinite(metrics[key]), key
  assert [os.path.basename(p) for p in metrics['plots']] == [
      'colour_l2ab_cumulative.png']
  assert Image.open(metrics['plots'][0]).size[0] > 100
  curve = np.loadtxt(out / 'colour_l2ab_cumulative.csv', delimiter=',',
                     skiprows=1)
  assert np.all(np.diff(curve[:, 1]) >= 0) and curve[-1, 1] <= 1.0
  assert np.mean(curve[:, 1]) == pytest.approx(metrics['l2ab_auc'])
  markdown = (out / 'metrics.md').read_text()
  assert '| psnr_channel_mean | ssim | l2_ab | l2ab_auc |' in markdown
  assert 'not run: perceptual' in markdown

  # Same protocol: side by side; another protocol: refused, with why.
  runs = results.compare([str(out / 'metrics.json')] * 2)
  text, table = results.tables(runs)
  assert 'l2ab_auc' in text and table.count('\n') == 3
  other = dict(metrics)
  other['protocol'] = json.loads(json.dumps(metrics['protocol']))
  other['protocol']['colour']['resolution'] = 'model'
  other_path = tmp_path / 'other.json'
  other_path.write_text(json.dumps(other))
  with pytest.raises(results.ProtocolMismatchError, match='resolution'):
    results.compare([str(out / 'metrics.json'), str(other_path)])
  result = subprocess.run(
      [sys.executable, '-m', 'colorjax.compare', str(out / 'metrics.json'),
       str(other_path)], cwd=REPO, capture_output=True, text=True,
      timeout=300, check=False)
  assert result.returncode == 2 and 'not comparable' in result.stderr


@pytest.fixture(scope='module')
def tiny_segmenter(shapes_data_dir, tmp_path_factory):
  """(workdir, its own final evaluation) of the tiny reference segmenter."""
  from colorjax import train  # pylint: disable=g-import-not-at-top
  from conftest import tiny_config  # pylint: disable=g-import-not-at-top
  from conftest import shared_across_workers  # pylint: disable=g-import-not-at-top
  seg_config = tiny_config(shapes_data_dir, 'segmenter')
  seg_config.data.eval_max_batches = -1
  def build(seg_dir):
    return seg_dir, train.train_and_evaluate(seg_config, seg_dir)['eval']
  return shared_across_workers(tmp_path_factory, 'tiny_segmenter', build)


def test_reference_segmenter_reports_gray_colorized_rgb(shapes_data_dir,
                                                        tiny_run,
                                                        tiny_segmenter):
  """004 Table 3's triple: the segmenter's mIoU on RGB and on gray equals
  its own evaluation of those images; a perfect colorization scores as
  RGB, ab = 0 as gray."""
  from conftest import tiny_config  # pylint: disable=g-import-not-at-top
  seg_dir, own = tiny_segmenter
  config = tiny_config(shapes_data_dir)
  config.data.eval_max_batches = -1
  evals = {'r': dict(type='reference_segmentation', segmenter=seg_dir)}
  runner, perfect = _oracle_run(config, evals, 1.0)
  perfect = perfect['r']
  assert perfect['num_images'] == 8
  assert perfect['miou_colorized'] == pytest.approx(perfect['miou_rgb'])
  # The evaluator's RGB is the Lab round trip of the photo: equal up to
  # a rare flipped pixel.
  assert perfect['miou_rgb'] == pytest.approx(own['miou'], abs=0.02)
  assert perfect['miou_gray'] == pytest.approx(
      own['val_segmentation_gray/miou'], abs=0.02)
  _, gray = _oracle_run(config, evals, 0.0)
  assert gray['r']['miou_colorized'] == pytest.approx(gray['r']['miou_gray'])
  assert runner.evaluators['r'].source.startswith(seg_dir)
  # Full resolution: the 32x32 scenes sit on the dataset's 64x64 canvas;
  # the segmenter sees the real region (32 -> its 32 input: no resampling)
  # and is scored against segmentation_full over the real pixels only, so
  # the triple equals the model-resolution one.
  _, full = _oracle_run(config, {'r': dict(
      type='reference_segmentation', segmenter=seg_dir,
      resolution='full')}, 1.0)
  for key in ('miou_rgb', 'miou_gray', 'miou_colorized'):
    assert full['r'][key] == pytest.approx(perfect[key], abs=1e-6), key
  colorizer_dir, _ = tiny_run
  with pytest.raises(ValueError, match='not a segmenter'):
    _oracle_run(config, {'r': dict(type='reference_segmentation',
                                   segmenter=colorizer_dir)}, 1.0)


def test_paper004_segmenter_file_is_deeplab_v2_by_default(shapes_data_dir,
                                                          tmp_path):
  """A weights file without NAME: is paper 004's DeepLab-v2 (the MSC
  port's `base.*` layout): Caffe's BGR mean on the input, its 1/8 logits
  resized to the input bilinearly (== the PyTorch reference + F.interpolate
  on the same image); NAME:PATH still picks another network. (The run
  around `segment` is the workdir segmenter's test above.)"""
  import torch  # pylint: disable=g-import-not-at-top
  from colorjax.evaluators import semantic  # pylint: disable=g-import-not-at-top
  from conftest import tiny_config  # pylint: disable=g-import-not-at-top
  import test_pretrained_deeplab_v2 as v2_test  # pylint: disable=g-import-not-at-top
  assert semantic.segmenter_file('/w/deeplabv2.pth') == (
      'deeplabv2_resnet101', '/w/deeplabv2.pth')
  assert semantic.segmenter_file('deeplabv3_resnet101:/w/v3.pth') == (
      'deeplabv3_resnet101', '/w/v3.pth')
  config = tiny_config(shapes_data_dir)
  reference = v2_test._reference(classes=config.data.num_classes)  # pylint: disable=protected-access
  path = str(tmp_path / 'deeplabv2_voc.pth')
  torch.save(reference.state_dict(), path)
  evaluator = semantic.ReferenceSegmentationEvaluator(
      'r', ml_collections.ConfigDict(dict(
          type='reference_segmentation', segmenter=path, input_size=40)),
      _OracleMethod(config, 1.0), config, sharding.data_mesh())
  assert evaluator.source == f'deeplabv2_resnet101:{path}'
  rgb = np.random.default_rng(0).uniform(0, 1, (1, 40, 40, 3)).astype(
      np.float32)
  got = np.asarray(jax.jit(evaluator.segment)(evaluator.networks, rgb))
  with torch.no_grad():
    bgr = rgb[..., ::-1] * 255 - np.array((104.008, 116.669, 122.675))
    want = torch.nn.functional.interpolate(
        reference(torch.from_numpy(bgr.transpose(0, 3, 1, 2).astype(
            np.float32))), size=(40, 40), mode='bilinear',
        align_corners=False).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())


def test_diversity_metrics_equal_their_references(tiny_pixsem_run,
                                                  tmp_path):
  """Pairwise LPIPS of the samples == the PyTorch LPIPS of the same
  samples, best-of-N PSNR == the best scikit-image PSNR, MS-SSIM pairs
  kept for the histogram (004 Fig. 11)."""
  import test_pretrained  # pylint: disable=g-import-not-at-top
  lpips_model = test_pretrained._lpips_reference()    # pylint: disable=protected-access
  lpips_path = str(tmp_path / 'lpips_alex.pth')
  torch.save(lpips_model.state_dict(), lpips_path)
  workdir, _ = tiny_pixsem_run
  config = workdir_lib.load_config(workdir)
  config.data.eval_batch_size = 8      # the 8 validation scenes, one batch
  config.data.eval_max_batches = 1
  method, state = workdir_lib.restore_for_inference(workdir)
  runner = evaluation.Evaluation(
      method, config, sharding.data_mesh(), ml_collections.ConfigDict(
          {'d': dict(type='diversity', num_samples=3, lpips=lpips_path,
                     lpips_size=32)}))
  runner.plots_dir = str(tmp_path / 'plots')
  got = runner.run(state)['d']

  source = pipeline.data_source(config.data.dataset, config.data.eval_split,
                                config.data.data_dir)
  ops = preprocess.parse(config.data.preprocess_eval)
  examples = [preprocess.apply(ops, source[i]) for i in range(len(source))]
  gray = np.stack([e['gray'] for e in examples])
  lightness = np.stack([e['l'] for e in examples])
  true_ab = np.stack([e['ab'] for e in examples]) * config.data.ab_scale
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0)
  ab, _ = jax.jit(lambda s, g, r: method.sample(s, g, r, 3))(state, gray,
                                                            rng)
  ab = np.asarray(ab) * config.data.ab_scale
  rgb = []
  for k in range(3):
    up = np.asarray(jax.image.resize(jnp.asarray(ab[:, k]),
                                     lightness.shape[:3] + (2,), 'linear'))
    rgb.append(color.lab_to_rgb_numpy(np.concatenate([lightness, up], -1)))
  true = color.lab_to_rgb_numpy(np.concatenate([lightness, true_ab], -1))
  nchw = lambda x: torch.from_numpy(  # pylint: disable=unnecessary-lambda-assignment
      (x * 2 - 1).astype(np.float32).transpose(0, 3, 1, 2).copy())
  with torch.no_grad():
    lpips = np.mean([lpips_model(nchw(rgb[a]), nchw(rgb[b])).numpy()
                     for a, b in [(0, 1), (0, 2), (1, 2)]], axis=0)
  best = np.max([[peak_signal_noise_ratio(true[i], rgb[k][i],
                                          data_range=1.0)
                  for i in range(len(true))] for k in range(3)], axis=0)
  assert got['diversity_num_samples'] == 3
  assert got['diversity_lpips'] == pytest.approx(float(lpips.mean()),
                                                 rel=2e-3)
  assert got['best_of_n_psnr'] == pytest.approx(float(best.mean()),
                                                abs=2e-3)
  assert 0.0 < got['diversity_msssim'] < 1.0
  pairs = runner.evaluators['d'].per_image('msssim_pairs')
  assert pairs.shape == (len(true), 3)
  assert got['diversity_msssim'] == pytest.approx(float(pairs.mean()),
                                                  rel=1e-5)
  assert os.path.exists(tmp_path / 'plots' / 'd_msssim_histogram.png')


def test_paper002_preset_scores_the_papers_compared_images():
  """002's compared images (section 3: COCO-Stuff val, the 164k release
  that has one) at full resolution, no segmentation score (GridNet's
  classes are PASCAL-Context's), LPIPS / FID when weights are given."""
  from colorjax import protocols  # pylint: disable=g-import-not-at-top
  from colorjax.datasets import catalog  # pylint: disable=g-import-not-at-top
  evals = protocols.evals_for('paper002', lpips='alex.pth')
  assert set(evals) == {'colour', 'perceptual'}
  for cfg in evals.values():
    assert (cfg.dataset, cfg.split, cfg.resolution) == (
        'coco_stuff/164k', 'val', 'full')
  assert evals.perceptual.lpips == 'alex.pth'
  assert catalog.lookup('coco_stuff/164k')['eval_split'] == 'val'
  assert 'user study' in protocols.get('paper002').description


def test_paper_presets_000_and_004_run_their_tables_protocols(
    tiny_run, tiny_pixsem_run, tiny_segmenter, tmp_path):
  """000 Table 1 (PSNR, SSIM, entropy at the model input) on ChromaCMC and
  004 Table 3 / Fig. 11 (reference-segmenter mIoU on gray / colorized /
  RGB, PSNR and ab RMSE at the photos' resolution, MS-SSIM between two
  samples with its histogram) on PixSem, each through its preset."""
  workdir, _ = tiny_run
  table1 = evaluate.evaluate_workdir(workdir, preset='paper000',
                                     plots_dir=str(tmp_path / 'p000'))
  assert table1['preset'] == 'paper000'
  assert table1['protocol']['colour']['resolution'] == 'model'
  for key in ('psnr', 'ssim', 'entropy'):
    assert np.isfinite(table1[key]), key
  assert 0.0 < table1['entropy'] <= 8.0          # bits, 256 grey levels

  pixsem_dir, _ = tiny_pixsem_run
  seg_dir, own = tiny_segmenter
  table3 = evaluate.evaluate_workdir(
      pixsem_dir, preset='paper004', networks={'segmenter': seg_dir},
      plots_dir=str(tmp_path / 'p004'))
  assert table3['preset'] == 'paper004' and not table3.get('skipped')
  assert table3['protocol']['colour']['resolution'] == 'full'
  assert table3['miou_rgb'] == pytest.approx(own['miou'], abs=0.02)
  assert table3['miou_gray'] == pytest.approx(
      own['val_segmentation_gray/miou'], abs=0.02)
  for key in ('miou_colorized', 'psnr', 'rmse_ab', 'diversity_msssim'):
    assert np.isfinite(table3[key]), key
  assert table3['rmse_ab'] > 0.0 and -1.0 <= table3['diversity_msssim'] < 1.0
  histogram = [p for p in table3['plots'] if 'msssim' in p.lower()]
  assert histogram and Image.open(histogram[0]).size[0] > 100
