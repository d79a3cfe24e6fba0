//! The task graph: structural problems (duplicates, unknown or self dependencies, cycles with
//! their path), topological order, and the downstream closure used for skip propagation.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;

/// A structural problem of the dependency graph, located by task index (and dependency index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DagProblem {
    /// A task reuses the name of an earlier task.
    DuplicateName {
        task: usize,
        name: String,
        first: usize,
    },
    /// A task depends on a name no task has.
    UnknownDependency {
        task: usize,
        dependency: usize,
        name: String,
    },
    /// A task depends on itself.
    SelfDependency { task: usize, dependency: usize },
    /// A cycle, as the task names along it, the first repeated at the end (`a → b → a`).
    Cycle { path: Vec<String> },
}

/// A validated DAG over task indices. Edges point from a dependency to its dependents.
#[derive(Clone, Debug)]
pub struct Dag {
    names: Vec<String>,
    dependencies: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    order: Vec<usize>,
}

impl Dag {
    /// Builds the graph from each task's name and dependency names, reporting every problem.
    pub fn new<N: AsRef<str>, D: AsRef<str>>(
        tasks: &[(N, Vec<D>)],
    ) -> Result<Dag, Vec<DagProblem>> {
        let mut problems = Vec::new();
        let mut index_of: HashMap<&str, usize> = HashMap::new();
        for (i, (name, _)) in tasks.iter().enumerate() {
            if let Some(&first) = index_of.get(name.as_ref()) {
                problems.push(DagProblem::DuplicateName {
                    task: i,
                    name: name.as_ref().to_string(),
                    first,
                });
            } else {
                index_of.insert(name.as_ref(), i);
            }
        }
        let mut dependencies = vec![Vec::new(); tasks.len()];
        for (i, (name, deps)) in tasks.iter().enumerate() {
            for (j, dep) in deps.iter().enumerate() {
                let dep = dep.as_ref();
                if dep == name.as_ref() {
                    problems.push(DagProblem::SelfDependency {
                        task: i,
                        dependency: j,
                    });
                } else if let Some(&target) = index_of.get(dep) {
                    if !dependencies[i].contains(&target) {
                        dependencies[i].push(target);
                    }
                } else {
                    problems.push(DagProblem::UnknownDependency {
                        task: i,
                        dependency: j,
                        name: dep.to_string(),
                    });
                }
            }
        }
        let names: Vec<String> = tasks
            .iter()
            .map(|(name, _)| name.as_ref().to_string())
            .collect();
        let mut graph = DiGraphMap::<usize, ()>::new();
        for i in 0..tasks.len() {
            graph.add_node(i);
        }
        for (i, deps) in dependencies.iter().enumerate() {
            for &dep in deps {
                graph.add_edge(dep, i, ());
            }
        }
        // Any strongly connected component with more than one task holds at least one cycle.
        let components = tarjan_scc(&graph);
        for component in components.iter().filter(|c| c.len() > 1) {
            problems.push(DagProblem::Cycle {
                path: cycle_path(component, &dependencies, &names),
            });
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut dependents = vec![Vec::new(); tasks.len()];
        for (i, deps) in dependencies.iter().enumerate() {
            for &dep in deps {
                dependents[dep].push(i);
            }
        }
        let order = stable_order(&dependencies, &dependents);
        Ok(Dag {
            names,
            dependencies,
            dependents,
            order,
        })
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the graph has no task.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Task name at an index.
    pub fn name(&self, task: usize) -> &str {
        &self.names[task]
    }

    /// Index of a task by name.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Direct dependencies of a task.
    pub fn dependencies(&self, task: usize) -> &[usize] {
        &self.dependencies[task]
    }

    /// Direct dependents of a task.
    pub fn dependents(&self, task: usize) -> &[usize] {
        &self.dependents[task]
    }

    /// Every task in an order where each comes after all of its dependencies.
    pub fn topological_order(&self) -> &[usize] {
        &self.order
    }

    /// Every task that (transitively) depends on `task`.
    pub fn downstream(&self, task: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![task];
        while let Some(current) = stack.pop() {
            for &next in &self.dependents[current] {
                if seen.insert(next) {
                    stack.push(next);
                }
            }
        }
        seen
    }
}

/// Kahn's algorithm taking the lowest spec index among ready tasks, so ties keep the order
/// the user wrote (tasks start, and are listed, in spec order where the graph allows).
fn stable_order(dependencies: &[Vec<usize>], dependents: &[Vec<usize>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = dependencies.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = waiting
        .iter()
        .enumerate()
        .filter(|(_, n)| **n == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(dependencies.len());
    while let Some(Reverse(task)) = ready.pop() {
        order.push(task);
        for &next in &dependents[task] {
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(Reverse(next));
            }
        }
    }
    order
}

/// One concrete cycle inside a strongly connected component, starting from its first task in
/// spec order so the report is stable: a depth-first walk along dependencies that stays in the
/// component until it returns to the start.
fn cycle_path(component: &[usize], dependencies: &[Vec<usize>], names: &[String]) -> Vec<String> {
    let members: BTreeSet<usize> = component.iter().copied().collect();
    let start = *members.iter().next().expect("components are never empty");
    let mut path = vec![start];
    let mut visited = BTreeSet::from([start]);
    // Iterative DFS with an explicit cursor per level, since components can be large.
    let mut cursors = vec![0usize];
    while let Some(&current) = path.last() {
        let level = path.len() - 1;
        let next = dependencies[current][cursors[level]..]
            .iter()
            .position(|d| members.contains(d) && (*d == start || !visited.contains(d)));
        match next {
            Some(offset) => {
                let dep = dependencies[current][cursors[level] + offset];
                cursors[level] += offset + 1;
                if dep == start {
                    path.push(start);
                    break;
                }
                visited.insert(dep);
                path.push(dep);
                cursors.push(0);
            }
            None => {
                path.pop();
                cursors.pop();
            }
        }
    }
    // The walk follows dependsOn, so the path reads "a depends on c, which depends on …, on a".
    path.iter().map(|&i| names[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dag(edges: &[(&str, &[&str])]) -> Result<Dag, Vec<DagProblem>> {
        let tasks: Vec<(&str, Vec<&str>)> = edges.iter().map(|(n, d)| (*n, d.to_vec())).collect();
        Dag::new(&tasks)
    }

    #[test]
    fn a_diamond_is_ordered_with_every_task_after_its_dependencies() {
        let dag = dag(&[("d", &["b", "c"]), ("b", &["a"]), ("c", &["a"]), ("a", &[])]).unwrap();
        let order: Vec<&str> = dag
            .topological_order()
            .iter()
            .map(|&i| dag.name(i))
            .collect();
        let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
        assert!(
            pos("a") < pos("b")
                && pos("a") < pos("c")
                && pos("b") < pos("d")
                && pos("c") < pos("d")
        );
    }

    #[test]
    fn a_cycle_is_reported_with_its_path() {
        let problems = dag(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]).unwrap_err();
        assert_eq!(
            problems,
            vec![DagProblem::Cycle {
                path: vec!["a".into(), "c".into(), "b".into(), "a".into()]
            }]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = dag(&[
            ("a", &["a", "zz"]),
            ("a", &[]),
            ("b", &["c"]),
            ("c", &["b"]),
        ])
        .unwrap_err();
        assert!(problems.contains(&DagProblem::SelfDependency {
            task: 0,
            dependency: 0
        }));
        assert!(problems.contains(&DagProblem::UnknownDependency {
            task: 0,
            dependency: 1,
            name: "zz".into()
        }));
        assert!(problems.contains(&DagProblem::DuplicateName {
            task: 1,
            name: "a".into(),
            first: 0
        }));
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, DagProblem::Cycle { .. }))
        );
    }

    #[test]
    fn downstream_is_the_transitive_closure_of_dependents() {
        let dag = dag(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]).unwrap();
        assert_eq!(dag.downstream(0), BTreeSet::from([1, 2]));
        assert!(dag.downstream(3).is_empty());
    }

    /// Random graphs: edges from each task to a random subset of all tasks.
    fn arbitrary_graph() -> impl Strategy<Value = Vec<Vec<usize>>> {
        (1usize..25)
            .prop_flat_map(|n| prop::collection::vec(prop::collection::btree_set(0..n, 0..4), n))
            .prop_map(|deps| deps.into_iter().map(|d| d.into_iter().collect()).collect())
    }

    fn has_cycle(deps: &[Vec<usize>]) -> bool {
        // Reference check by repeated removal of tasks without remaining dependencies (Kahn).
        let mut remaining: Vec<BTreeSet<usize>> =
            deps.iter().map(|d| d.iter().copied().collect()).collect();
        let mut done = vec![false; deps.len()];
        loop {
            let ready: Vec<usize> = (0..deps.len())
                .filter(|&i| !done[i] && remaining[i].is_empty())
                .collect();
            if ready.is_empty() {
                return done.iter().any(|d| !d);
            }
            for i in ready {
                done[i] = true;
                remaining.iter_mut().for_each(|r| {
                    r.remove(&i);
                });
            }
        }
    }

    proptest! {
        #[test]
        fn every_cycle_is_reported_and_every_acyclic_graph_is_ordered(deps in arbitrary_graph()) {
            let tasks: Vec<(String, Vec<String>)> = deps.iter().enumerate()
                .map(|(i, d)| (format!("t{i}"), d.iter().map(|j| format!("t{j}")).collect()))
                .collect();
            let self_loops = deps.iter().enumerate().any(|(i, d)| d.contains(&i));
            let without_self: Vec<Vec<usize>> = deps.iter().enumerate()
                .map(|(i, d)| d.iter().copied().filter(|&j| j != i).collect()).collect();
            match Dag::new(&tasks) {
                Ok(dag) => {
                    prop_assert!(!self_loops && !has_cycle(&without_self));
                    let order = dag.topological_order();
                    prop_assert_eq!(order.len(), deps.len());
                    for (pos, &task) in order.iter().enumerate() {
                        for dep in dag.dependencies(task) {
                            prop_assert!(order[..pos].contains(dep));
                        }
                    }
                }
                Err(problems) => {
                    let cycles: Vec<&Vec<String>> = problems.iter().filter_map(|p| match p {
                        DagProblem::Cycle { path } => Some(path),
                        _ => None,
                    }).collect();
                    prop_assert_eq!(!cycles.is_empty(), has_cycle(&without_self));
                    prop_assert_eq!(problems.iter().any(|p| matches!(p, DagProblem::SelfDependency { .. })), self_loops);
                    // Each reported path is a real cycle along dependsOn edges.
                    for path in cycles {
                        prop_assert_eq!(path.first(), path.last());
                        for pair in path.windows(2) {
                            let from: usize = pair[0][1..].parse().unwrap();
                            let to: usize = pair[1][1..].parse().unwrap();
                            prop_assert!(deps[from].contains(&to));
                        }
                    }
                }
            }
        }
    }
}
