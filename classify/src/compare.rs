//! `classify compare`: a grid of architectures × losses × seeds trained with one recipe on one dataset
//! (the paper's Table 4), then a summary: mean ± standard deviation over the seeds of the final and the
//! best validation top-1 of every (architecture, loss) pair.
//!
//! The grid lives in one folder (`runs/<name>/`); each cell `(arch, loss, seed)` is an ordinary run folder
//! in it (`<arch>-<loss>-seed<seed>/`, trained by [`crate::pipeline::train`] and the shared training
//! loop, with its checkpoints, metrics and curves). Running the same command again continues the grid:
//! a cell whose records reach the last epoch is skipped, a cell with a checkpoint resumes from it
//! (`--resume`), the others start. A cell trained with another recipe is an error, never overwritten.
//!
//! The summary files sit in the grid folder: [`SUMMARY_MD`], [`SUMMARY_CSV`], [`SUMMARY_JSON`] and the
//! grouped bar chart [`SUMMARY_PNG`] (one group per architecture, one bar per loss, the standard
//! deviation as the error bar).

use crate::pipeline;
use crate::recipe::ClassifyRecipe;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use skipblock_core::loss::LossKind;
use skipblock_core::model::Arch;
use skipblock_core::train::fit::state_path;
use skipblock_core::train::metrics::MetricsLog;
use skipblock_core::train::{EpochRecord, RunSettings};
use skipblock_core::{config, tensors, ui, Task};
use skipblock_data::plot::{palette, GroupedBarChart};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const SUMMARY_MD: &str = "compare.md";
pub const SUMMARY_CSV: &str = "compare.csv";
pub const SUMMARY_JSON: &str = "compare.json";
pub const SUMMARY_PNG: &str = "compare.png";

/// The cells to train: every architecture with every loss and every seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    pub archs: Vec<Arch>,
    pub losses: Vec<LossKind>,
    pub seeds: Vec<u64>,
}

/// One run of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub arch: Arch,
    pub loss: LossKind,
    pub seed: u64,
}

impl Cell {
    /// The run folder's name in the grid folder: `skipblocknet-xs-bias-seed1`.
    pub fn name(&self) -> String {
        format!("{}-{}-seed{}", self.arch, self.loss, self.seed)
    }
}

impl Grid {
    /// A grid of classifiers (no duplicates, none of the lists empty).
    pub fn new(archs: Vec<Arch>, losses: Vec<LossKind>, seeds: Vec<u64>) -> Result<Grid> {
        ensure!(!archs.is_empty(), "compare: name at least one architecture (--arch)");
        ensure!(!losses.is_empty(), "compare: name at least one loss (--loss)");
        ensure!(!seeds.is_empty(), "compare: at least one seed (--seeds N)");
        for a in &archs {
            ensure!(a.task() == Task::Classify, "compare: '{a}' is not a classifier");
        }
        ensure!(!has_duplicates(&archs), "compare: an architecture is named twice");
        ensure!(!has_duplicates(&losses), "compare: a loss is named twice");
        ensure!(!has_duplicates(&seeds), "compare: a seed is named twice");
        Ok(Grid { archs, losses, seeds })
    }

    /// Every cell, architecture by architecture, then loss, then seed.
    pub fn cells(&self) -> Vec<Cell> {
        let mut out = Vec::new();
        for &arch in &self.archs {
            for &loss in &self.losses {
                out.extend(self.seeds.iter().map(|&seed| Cell { arch, loss, seed }));
            }
        }
        out
    }
}

fn has_duplicates<T: PartialEq>(v: &[T]) -> bool {
    v.iter().enumerate().any(|(i, x)| v[..i].contains(x))
}

/// The recipe of one cell: the grid's recipe with the cell's architecture, loss and run name.
pub fn cell_recipe(base: &ClassifyRecipe, cell: &Cell) -> ClassifyRecipe {
    let mut r = base.clone();
    r.model.arch = cell.arch;
    r.loss.kind = cell.loss;
    r.name = cell.name();
    r
}

/// How far a cell's run folder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellState {
    /// No checkpoint yet: train from the start.
    New,
    /// A checkpoint after some epochs: resume.
    Partial,
    /// The records reach the recipe's last epoch, with its evaluation.
    Finished,
}

/// The records of a cell's run when they cover every epoch up to `epochs` and the last one was evaluated.
fn finished_records(dir: &Path, epochs: usize) -> Result<Option<Vec<EpochRecord>>> {
    let records = MetricsLog::new(dir).read()?;
    let done =
        state_path(dir).exists() && records.last().is_some_and(|r| r.epoch >= epochs && r.val.val_top1.is_some());
    Ok(done.then_some(records))
}

/// Where the cell in `dir` stands; an error when its folder holds a run of another recipe.
pub fn cell_state(dir: &Path, recipe_text: &str, epochs: usize) -> Result<CellState> {
    let saved = dir.join("config.toml");
    if saved.exists() {
        let text = std::fs::read_to_string(&saved).with_context(|| format!("cannot read '{}'", saved.display()))?;
        if text != recipe_text {
            bail!(
                "'{}' holds a run of another recipe (its config.toml differs from this grid's): use another --name, \
                 or delete that folder to retrain the cell",
                dir.display()
            );
        }
    }
    if finished_records(dir, epochs)?.is_some() {
        Ok(CellState::Finished)
    } else if state_path(dir).exists() {
        Ok(CellState::Partial)
    } else {
        Ok(CellState::New)
    }
}

/// What a grid run is given besides the recipe and the grid.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The grid folder (`runs/<name>`).
    pub dir: PathBuf,
    pub device: tch::Device,
    /// Train at most this many cells in this invocation (started or resumed; finished ones are skipped
    /// without counting), then write the summary of what is finished: for time-limited jobs.
    pub max_cells: Option<usize>,
}

/// A finished cell's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    #[serde(flatten)]
    pub cell: Cell,
    pub run: String,
    pub epochs: usize,
    pub final_top1: f64,
    pub best_top1: f64,
    pub best_epoch: usize,
}

/// Mean and sample standard deviation (n − 1; none for a single value).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub mean: f64,
    pub std: Option<f64>,
}

impl Stat {
    pub fn of(values: &[f64]) -> Stat {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std =
            (values.len() > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        Stat { mean, std }
    }

    /// "75.51 ± 0.21" in percent ("75.51" for a single seed).
    fn percent(&self) -> String {
        match self.std {
            Some(s) => format!("{:.2} ± {:.2}", 100.0 * self.mean, 100.0 * s),
            None => format!("{:.2}", 100.0 * self.mean),
        }
    }
}

/// One (architecture, loss) pair over its finished seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairSummary {
    pub arch: Arch,
    pub loss: LossKind,
    pub seeds: Vec<u64>,
    pub final_top1: Stat,
    pub best_top1: Stat,
}

/// The grid's summary (`compare.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridSummary {
    /// The grid folder's name.
    pub name: String,
    pub recipe: String,
    pub epochs: usize,
    pub cells_total: usize,
    pub cells_finished: usize,
    pub pairs: Vec<PairSummary>,
    pub cells: Vec<CellResult>,
}

/// The numbers of the cell in `dir`, when finished.
fn cell_result(grid_dir: &Path, cell: &Cell, epochs: usize) -> Result<Option<CellResult>> {
    let run = cell.name();
    let Some(records) = finished_records(&grid_dir.join(&run), epochs)? else { return Ok(None) };
    let evaluated: Vec<(usize, f64)> = records.iter().filter_map(|r| r.val.val_top1.map(|t| (r.epoch, t))).collect();
    let (best_epoch, best_top1) =
        evaluated.iter().copied().fold((0, f64::NEG_INFINITY), |b, x| if x.1 > b.1 { x } else { b });
    let final_top1 = evaluated.last().map(|x| x.1).context("finished runs have an evaluation")?;
    Ok(Some(CellResult { cell: *cell, run, epochs, final_top1, best_top1, best_epoch }))
}

/// The summary of the finished cells of `grid` in `dir`.
pub fn summarise(grid: &Grid, recipe: &ClassifyRecipe, dir: &Path) -> Result<GridSummary> {
    let epochs = recipe.train.epochs;
    let mut cells = Vec::new();
    for cell in grid.cells() {
        if let Some(r) = cell_result(dir, &cell, epochs)? {
            cells.push(r);
        }
    }
    let mut pairs = Vec::new();
    for &arch in &grid.archs {
        for &loss in &grid.losses {
            let mine: Vec<&CellResult> = cells.iter().filter(|c| c.cell.arch == arch && c.cell.loss == loss).collect();
            if mine.is_empty() {
                continue;
            }
            let finals: Vec<f64> = mine.iter().map(|c| c.final_top1).collect();
            let bests: Vec<f64> = mine.iter().map(|c| c.best_top1).collect();
            pairs.push(PairSummary {
                arch,
                loss,
                seeds: mine.iter().map(|c| c.cell.seed).collect(),
                final_top1: Stat::of(&finals),
                best_top1: Stat::of(&bests),
            });
        }
    }
    let cells_total = grid.cells().len();
    let name = dir.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    Ok(GridSummary {
        name,
        recipe: recipe.name.clone(),
        epochs,
        cells_total,
        cells_finished: cells.len(),
        pairs,
        cells,
    })
}

impl GridSummary {
    fn pair(&self, arch: Arch, loss: LossKind) -> Option<&PairSummary> {
        self.pairs.iter().find(|p| p.arch == arch && p.loss == loss)
    }

    /// The Markdown report: the Table-4 layout (architectures × losses, final top-1), then every pair
    /// with its seeds, final and best top-1.
    pub fn markdown(&self, grid: &Grid) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# {}\n\nRecipe `{}`, {} epochs; {} of {} cells finished. Top-1 in %, mean ± sample standard \
             deviation over the seeds.\n",
            self.name, self.recipe, self.epochs, self.cells_finished, self.cells_total
        );
        let _ = writeln!(s, "Final top-1:\n");
        let losses: Vec<String> = grid.losses.iter().map(|l| l.to_string()).collect();
        let _ = writeln!(s, "| architecture | {} |", losses.join(" | "));
        let _ = writeln!(s, "|---|{}", "---|".repeat(losses.len()));
        for &arch in &grid.archs {
            let row: Vec<String> = grid
                .losses
                .iter()
                .map(|&l| self.pair(arch, l).map_or("–".into(), |p| p.final_top1.percent()))
                .collect();
            let _ = writeln!(s, "| {arch} | {} |", row.join(" | "));
        }
        let _ = writeln!(s, "\n| architecture | loss | seeds | final top-1 | best top-1 |\n|---|---|---|---|---|");
        for p in &self.pairs {
            let seeds: Vec<String> = p.seeds.iter().map(u64::to_string).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                p.arch,
                p.loss,
                seeds.join(", "),
                p.final_top1.percent(),
                p.best_top1.percent()
            );
        }
        s
    }

    /// One row per pair; fractions of 1, an empty std for a single seed.
    pub fn csv(&self) -> String {
        let mut s = String::from("arch,loss,seeds,final_top1_mean,final_top1_std,best_top1_mean,best_top1_std\n");
        let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        for p in &self.pairs {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{}",
                p.arch,
                p.loss,
                p.seeds.len(),
                num(Some(p.final_top1.mean)),
                num(p.final_top1.std),
                num(Some(p.best_top1.mean)),
                num(p.best_top1.std)
            );
        }
        s
    }

    /// The grouped bar chart of the final top-1: one group per architecture, one bar per loss.
    pub fn chart(&self, grid: &Grid) -> GroupedBarChart {
        let values: Vec<Vec<(f64, f64)>> = grid
            .archs
            .iter()
            .map(|&a| {
                grid.losses
                    .iter()
                    .map(|&l| {
                        self.pair(a, l)
                            .map_or((f64::NAN, 0.0), |p| (p.final_top1.mean, p.final_top1.std.unwrap_or(0.0)))
                    })
                    .collect()
            })
            .collect();
        let top = values.iter().flatten().filter(|v| v.0.is_finite()).map(|v| v.0 + v.1).fold(0.0, f64::max);
        // The axis ends at the next tenth above the highest error bar.
        let hi = ((top * 10.0).floor() + 1.0).min(10.0) / 10.0;
        GroupedBarChart {
            title: format!("{}: final val top-1 (mean ± std over seeds)", self.name),
            y_label: "val top-1".into(),
            groups: grid.archs.iter().map(|a| a.to_string()).collect(),
            series: grid.losses.iter().enumerate().map(|(i, l)| (l.to_string(), palette(i))).collect(),
            values,
            range: (0.0, hi),
            percent: true,
        }
    }

    /// Writes the Markdown, CSV, JSON and PNG files into `dir`.
    pub fn save(&self, grid: &Grid, dir: &Path) -> Result<()> {
        tensors::write_atomic(&dir.join(SUMMARY_MD), self.markdown(grid).as_bytes())?;
        tensors::write_atomic(&dir.join(SUMMARY_CSV), self.csv().as_bytes())?;
        tensors::write_atomic(&dir.join(SUMMARY_JSON), serde_json::to_string_pretty(self)?.as_bytes())?;
        self.chart(grid).save(&dir.join(SUMMARY_PNG))
    }
}

/// Trains the grid's unfinished cells (up to `options.max_cells`), then writes and returns the summary.
pub fn run(recipe: &ClassifyRecipe, data: Option<&Path>, grid: &Grid, options: &CompareOptions) -> Result<GridSummary> {
    if recipe.task != Task::Classify {
        bail!("the recipe is for task '{}', not classify", recipe.task);
    }
    let epochs = recipe.train.epochs;
    ensure!(epochs > 0, "compare: the recipe trains no epochs");
    std::fs::create_dir_all(&options.dir).with_context(|| format!("cannot create '{}'", options.dir.display()))?;
    let cells = grid.cells();
    let mut trained = 0;
    for (i, cell) in cells.iter().enumerate() {
        let r = cell_recipe(recipe, cell);
        let dir = options.dir.join(cell.name());
        let state = cell_state(&dir, &config::to_toml(&r)?, epochs)?;
        let what = format!("cell {}/{} ({} · {} · seed {})", i + 1, cells.len(), cell.arch, cell.loss, cell.seed);
        if state == CellState::Finished {
            ui::info(format!("{what}: finished, skipped"));
            continue;
        }
        if options.max_cells.is_some_and(|m| trained >= m) {
            ui::info(format!("stopping after {trained} cell(s) (--max-cells); run the same command again to continue"));
            break;
        }
        ui::info(format!("{what}: {}", if state == CellState::Partial { "resuming" } else { "training" }));
        let settings = RunSettings {
            runs_dir: options.dir.clone(),
            name: Some(cell.name()),
            resume: state == CellState::Partial,
            exist_ok: false,
            stop_after: None,
            device: options.device,
            seed: cell.seed,
        };
        pipeline::train(&r, data, &settings, None).with_context(|| format!("{what} in '{}'", dir.display()))?;
        trained += 1;
        if finished_records(&dir, epochs)?.is_none() {
            bail!("{what}: '{}' is not complete after training (delete the folder to retrain the cell)", dir.display());
        }
    }
    let summary = summarise(grid, recipe, &options.dir)?;
    summary.save(grid, &options.dir)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skipblock_core::train::Validation;

    #[test]
    fn stats_are_the_mean_and_the_sample_deviation() {
        let s = Stat::of(&[0.7, 0.8, 0.9]);
        assert!((s.mean - 0.8).abs() < 1e-12);
        assert!((s.std.unwrap() - 0.1).abs() < 1e-12, "{s:?}");
        assert_eq!(Stat::of(&[0.5]), Stat { mean: 0.5, std: None });
        assert_eq!(Stat::of(&[0.6, 0.6]).percent(), "60.00 ± 0.00");
    }

    #[test]
    fn a_grid_holds_classifiers_once_each() {
        let g = Grid::new(
            vec![Arch::SkipblocknetXs, Arch::Mobilenetv3Large],
            vec![LossKind::Ce, LossKind::Bias],
            vec![0, 1],
        )
        .unwrap();
        let cells = g.cells();
        assert_eq!(cells.len(), 8);
        assert_eq!(cells[1], Cell { arch: Arch::SkipblocknetXs, loss: LossKind::Ce, seed: 1 });
        assert_eq!(cells[7].name(), "mobilenetv3-large-bias-seed1");
        let err = |r: Result<Grid>| r.unwrap_err().to_string();
        assert!(err(Grid::new(vec![Arch::SsdSkipblocknetS], vec![LossKind::Ce], vec![0])).contains("not a classifier"));
        assert!(err(Grid::new(vec![Arch::SkipblocknetXs], vec![LossKind::Ce, LossKind::Ce], vec![0])).contains("twice"));
        assert!(err(Grid::new(vec![], vec![LossKind::Ce], vec![0])).contains("--arch"));
    }

    /// A fake finished (or not) run: a checkpoint state file and its metrics.
    fn fake_run(dir: &Path, top1: &[f64], state: bool) {
        std::fs::create_dir_all(dir).unwrap();
        let log = MetricsLog::new(dir);
        for (i, &t) in top1.iter().enumerate() {
            let val = Validation { val_top1: Some(t), ..Default::default() };
            log.append(&EpochRecord { epoch: i + 1, val, ..Default::default() }).unwrap();
        }
        if state {
            std::fs::write(state_path(dir), b"x").unwrap();
        }
    }

    #[test]
    fn the_summary_covers_finished_cells_only() {
        let dir = tempfile::tempdir().unwrap();
        let grid = Grid::new(vec![Arch::SkipblocknetXs], vec![LossKind::Ce, LossKind::Bias], vec![0, 1]).unwrap();
        let recipe = ClassifyRecipe {
            train: skipblock_core::recipe::TrainSection { epochs: 3, ..Default::default() },
            ..Default::default()
        };
        let cell = |loss, seed| dir.path().join(Cell { arch: Arch::SkipblocknetXs, loss, seed }.name());
        fake_run(&cell(LossKind::Ce, 0), &[0.2, 0.5, 0.4], true);
        fake_run(&cell(LossKind::Ce, 1), &[0.3, 0.4, 0.6], true);
        fake_run(&cell(LossKind::Bias, 0), &[0.3, 0.5], true); // 2 of 3 epochs: partial
        fake_run(&cell(LossKind::Bias, 1), &[0.3, 0.5, 0.7], false); // no checkpoint state: not finished
        let text = config::to_toml(&recipe).unwrap();
        assert_eq!(cell_state(&cell(LossKind::Ce, 0), &text, 3).unwrap(), CellState::Finished);
        assert_eq!(cell_state(&cell(LossKind::Bias, 0), &text, 3).unwrap(), CellState::Partial);
        assert_eq!(cell_state(&cell(LossKind::Bias, 1), &text, 3).unwrap(), CellState::New);
        std::fs::write(cell(LossKind::Ce, 0).join("config.toml"), "name = \"other\"").unwrap();
        assert!(cell_state(&cell(LossKind::Ce, 0), &text, 3).unwrap_err().to_string().contains("another recipe"));

        let s = summarise(&grid, &recipe, dir.path()).unwrap();
        assert_eq!((s.cells_total, s.cells_finished, s.pairs.len()), (4, 2, 1));
        let p = &s.pairs[0];
        assert_eq!((p.loss, p.seeds.clone()), (LossKind::Ce, vec![0, 1]));
        assert!((p.final_top1.mean - 0.5).abs() < 1e-12 && (p.best_top1.mean - 0.55).abs() < 1e-12, "{p:?}");
        assert_eq!(s.cells[0].best_epoch, 2);
        let md = s.markdown(&grid);
        assert!(md.contains("| skipblocknet-xs | 50.00 ± 14.14 | – |"), "{md}");
        assert!(s.csv().lines().nth(1).unwrap().starts_with("skipblocknet-xs,ce,2,0.500000,0.141421,0.550000,"));
        s.save(&grid, dir.path()).unwrap();
        let back: GridSummary =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(SUMMARY_JSON)).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(dir.path().join(SUMMARY_PNG).exists());
    }
}
