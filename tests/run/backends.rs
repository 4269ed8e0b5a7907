//! Issue 11 through `edge-runner run`: the same kind of task runs under either ES256
//! backend (one configuration line).

use super::{Backend, COMPLETED, World, assert_exit, assert_linked};

on_both_backends!(a_task_runs_under_both_es256_backends,);

fn a_task_runs_under_both_es256_backends(backend: Backend) {
    let w = World::new(backend);
    let digest = w.add_tool("true-tool", "#!/bin/sh\necho ok\n", true);
    for (n, config) in ["", "[plugins.verifiers]\nES256 = \"es256-libcrux\"\n"]
        .into_iter()
        .enumerate()
    {
        w.write_config(config);
        let task = w.sign(&w.manifest(&format!("t-{n}"), &digest));
        let o = w.run(&task);
        assert_exit(&o, 0);
    }
    let events = w.events();
    assert_eq!(events.len(), 2);
    for (n, e) in events.iter().enumerate() {
        assert_eq!(e["type"], COMPLETED, "{e:#}");
        assert_linked(e, &format!("t-{n}"), &digest);
    }
}
