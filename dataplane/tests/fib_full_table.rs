//! The lookup structure on a full Internet table agrees with an independent implementation (the
//! `prefix-trie` crate) on a million addresses, before and after deleting a tenth of the routes.
//!
//! Reads `routes-v4-1m.txt.gz` from the shared test data (`XFWD_DATA_DIR`, or `../shared/data`
//! next to the workspace); without it, a generated table of the same size and shape, and says so.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use xfwd::fib::Rib;
use xfwd::fib::lpm::mask;
use xfwd::fib::rib::found;

fn data_file(name: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::var_os("XFWD_DATA_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([root.join("../shared/data"), root.join("../../shared/data")])
        .map(|d| d.join(name))
        .find(|f| f.is_file())
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
}

fn table() -> Vec<(u32, u8, u32)> {
    if let Some(f) = data_file("routes-v4-1m.txt.gz") {
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(&f)
            .output()
            .expect("gzip");
        assert!(out.status.success(), "gzip -dc {}", f.display());
        let text = String::from_utf8(out.stdout).expect("utf-8");
        return text
            .lines()
            .filter_map(|l| {
                let (pfx, nh) = l.split_once(' ')?;
                let (a, len) = pfx.split_once('/')?;
                let a: Ipv4Addr = a.parse().ok()?;
                let len: u8 = len.parse().ok()?;
                Some((a.to_bits() & mask(len), len, nh.trim().parse().ok()?))
            })
            .collect();
    }
    eprintln!("routes-v4-1m.txt.gz not found: using a generated table of 1,000,000 routes");
    let mut rng = Rng(7);
    // The full table's shape: mostly /24, /23, /22, a spread of shorter and a few longer.
    const LENS: [u8; 20] = [
        24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 23, 23, 23, 22, 22, 21, 20, 16, 28, 32,
    ];
    (0..1_000_000)
        .map(|i| {
            let l = LENS[i % LENS.len()];
            (rng.next() & mask(l), l, rng.next() % 512)
        })
        .collect()
}

#[test]
fn full_table_agrees_with_prefix_trie() {
    let routes = table();
    let net = |p: u32, l: u8| Ipv4Net::new_assert(Ipv4Addr::from_bits(p), l);
    let mut trie = PrefixMap::<Ipv4Net, u32>::new();
    for &(p, l, v) in &routes {
        trie.insert(net(p, l), v);
    }
    let mut rib = Rib::build(routes.iter().copied()).expect("build");
    assert_eq!(rib.len(), trie.len());
    let mut rng = Rng(0x5EED);
    let check = |rib: &Rib, trie: &PrefixMap<Ipv4Net, u32>, rng: &mut Rng, n: usize| {
        // Half uniformly random, half inside a route.
        let addrs: Vec<u32> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    rng.next()
                } else {
                    let (p, l, _) = routes[rng.next() as usize % routes.len()];
                    p | (rng.next() & !mask(l))
                }
            })
            .collect();
        let mut out = vec![0; n];
        rib.dir().lookup_batch(&addrs, &mut out);
        for (a, o) in addrs.iter().zip(&out) {
            let want = trie.get_lpm(&net(*a, 32)).map(|(_, v)| *v);
            assert_eq!(found(*o), want, "{}", Ipv4Addr::from_bits(*a));
        }
    };
    check(&rib, &trie, &mut rng, 1_000_000);
    // Delete every tenth route: covering routes must take their addresses back.
    for &(p, l, _) in routes.iter().step_by(10) {
        assert_eq!(
            rib.remove(p, l).expect("remove").is_some(),
            trie.remove(&net(p, l)).is_some()
        );
    }
    rib.dir().publish_grace();
    check(&rib, &trie, &mut rng, 300_000);
}
