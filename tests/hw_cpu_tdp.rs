//! CPU TDP matching against CodeCarbon 3.3.2 itself.
//!
//! Each expected row below is what CodeCarbon 3.3.2 returned, run on the same table
//! (`TDP()._get_matching_cpu(brand, DataSource().get_cpu_power_data())`, rapidfuzz 3.14.6,
//! non-greedy): real `/proc/cpuinfo` brand strings of common cloud and desktop CPUs, the
//! table's names decorated the way vendors write them (`Intel(R) Xeon(R) … CPU @ 2.50GHz`,
//! `AMD … 16-Core Processor`), names with their last word cut (often ambiguous: no match),
//! upper-cased names and random word mixes. A run over 16,644 such strings (every table
//! name as given, decorated and cut, 500 upper-cased, 1,500 mixes and the real strings) found
//! no difference; these 110 are a sample of it, kept here as the regression.

use carbontop::source::cpu_tdp::{lookup, token_set_ratio};

const CODECARBON_3_3_2: &[(&str, Option<&str>)] = &[
    (
        "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
        Some("Intel Xeon Platinum 8375C"),
    ),
    ("AMD EPYC 7R13 Processor", Some("AMD EPYC 7R13")),
    ("Intel(R) Xeon(R) CPU @ 2.20GHz", None),
    ("AMD EPYC 7B12", Some("AMD EPYC 7B12")),
    ("Intel(R) Core(TM) i9-13900K", Some("Intel Core i9-13900K")),
    ("AMD EPYC", None),
    ("Intel(R) Xeon(R) CPU @ 2.00GHz", None),
    (
        "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz",
        Some("Intel Xeon Platinum 8259CL"),
    ),
    (
        "Intel(R) Xeon(R) Platinum 8275CL CPU @ 3.00GHz",
        Some("Intel Xeon Platinum 8275CL"),
    ),
    (
        "Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz",
        Some("Intel Xeon E5-2686 v4"),
    ),
    (
        "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
        Some("Intel Xeon Gold 6338"),
    ),
    ("AMD EPYC 7763 64-Core Processor", Some("AMD EPYC 7763")),
    ("AMD EPYC 9654 96-Core Processor", Some("AMD EPYC 9654")),
    ("AMD EPYC 7V13 64-Core Processor", None),
    ("AMD EPYC 7J13 64-Core Processor", None),
    ("AMD EPYC 9R14 96-Core Processor", None),
    (
        "AMD Ryzen 9 7950X 16-Core Processor",
        Some("AMD Ryzen 9 7950X"),
    ),
    (
        "AMD Ryzen 7 5800X 8-Core Processor",
        Some("AMD Ryzen 7 5800X"),
    ),
    ("13th Gen Intel(R) Core(TM) i7-13700K", None),
    (
        "12th Gen Intel(R) Core(TM) i7-12700H",
        Some("Intel Core i7-12700H"),
    ),
    (
        "Intel(R) Xeon(R) Platinum 8480+",
        Some("Intel Xeon Platinum 8480+"),
    ),
    ("Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", None),
    ("Intel(R) Xeon(R) Platinum 8488C", None),
    (
        "Intel(R) Xeon(R) Platinum 8358 CPU @ 2.60GHz",
        Some("Intel Xeon Platinum 8358"),
    ),
    (
        "Intel(R) Xeon(R) Silver 4214R CPU @ 2.40GHz",
        Some("Intel Xeon Silver 4214R"),
    ),
    (
        "Intel(R) Xeon(R) CPU E5-2698 v4 @ 2.20GHz",
        Some("Intel Xeon E5-2698 v4"),
    ),
    (
        "Intel(R) Xeon(R) W-2295 CPU @ 3.00GHz",
        Some("Intel Xeon W-2295"),
    ),
    (
        "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz",
        Some("Intel Core i7-8700"),
    ),
    (
        "Intel(R) Core(TM) i5-10400F CPU @ 2.90GHz",
        Some("Intel Core i5-10400F"),
    ),
    (
        "AMD Ryzen Threadripper PRO 5995WX 64-Cores",
        Some("AMD Ryzen Threadripper PRO 5995WX"),
    ),
    ("Apple M1 Pro", Some("Apple M1")),
    ("Apple M2", Some("Apple M2")),
    ("Neoverse-N1", None),
    ("ARMv8 Processor rev 1 (v8l)", None),
    ("QEMU Virtual CPU version 2.5+", None),
    ("Common KVM processor", None),
    ("", None),
    (
        "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz",
        Some("Intel Xeon Gold 6248R"),
    ),
    (
        "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
        Some("Intel Xeon Gold 6248"),
    ),
    ("AMD EPYC 7543 32-Core Processor", Some("AMD EPYC 7543")),
    ("AMD EPYC 7713 64-Core Processor", Some("AMD EPYC 7713")),
    ("AMD EPYC 7R32", None),
    (
        "Intel(R) Xeon(R) Platinum 8168 CPU @ 2.70GHz",
        Some("Intel Xeon Platinum 8168"),
    ),
    (
        "Intel(R) Celeron(R) G3950 CPU @ 2.70GHz",
        Some("Intel Celeron G3950"),
    ),
    (
        "Intel(R) Xeon(R) X3440 CPU @ 4.49GHz",
        Some("Intel Xeon X3440"),
    ),
    (
        "Intel(R) Xeon(R) Gold 6314U CPU @ 3.22GHz",
        Some("Intel Xeon Gold 6314U"),
    ),
    (
        "AMD Ryzen 3 1200 16-Core Processor",
        Some("AMD Ryzen 3 1200"),
    ),
    (
        "Intel(R) Core(TM) i7-820QM CPU @ 3.71GHz",
        Some("Intel Core i7-820QM"),
    ),
    (
        "Intel(R) Xeon(R) E3-1225 CPU @ 2.24GHz",
        Some("Intel Xeon E3-1225"),
    ),
    (
        "Intel(R) Xeon(R) Silver 4416+ CPU @ 4.07GHz",
        Some("Intel Xeon Silver 4416+"),
    ),
    (
        "AMD Athlon II X3 450 with Radeon Graphics",
        Some("AMD Athlon II X3 450"),
    ),
    (
        "7th Gen A9-9425 APU 16-Core Processor",
        Some("7th Gen A9-9425 APU"),
    ),
    (
        "Intel(R) Xeon(R) E-2276ME CPU @ 2.02GHz",
        Some("Intel Xeon E-2276ME"),
    ),
    (
        "Intel(R) Core(TM) 2 Duo SL9300 CPU @ 1.01GHz",
        Some("Intel Core 2 Duo SL9300"),
    ),
    (
        "Intel(R) Xeon(R) L3403 CPU @ 2.70GHz",
        Some("Intel Xeon L3403"),
    ),
    (
        "Intel(R) Celeron(R) E1400 CPU @ 1.94GHz",
        Some("Intel Celeron E1400"),
    ),
    ("FX-6200 with Radeon Graphics", Some("FX-6200")),
    (
        "Intel(R) Xeon(R) E-2324G CPU @ 2.74GHz",
        Some("Intel Xeon E-2324G"),
    ),
    (
        "Intel(R) Xeon(R) Gold 6246 CPU @ 3.46GHz",
        Some("Intel Xeon Gold 6246"),
    ),
    (
        "Intel(R) Xeon(R) Gold 6538Y+ CPU @ 1.87GHz",
        Some("Intel Xeon Gold 6538Y+"),
    ),
    (
        "Intel(R) Xeon(R) E3-1240 v6 CPU @ 3.35GHz",
        Some("Intel Xeon E3-1240 v6"),
    ),
    (
        "Intel(R) Pentium(R) 4 2.26 CPU @ 4.62GHz",
        Some("Intel Pentium 4 2.26"),
    ),
    (
        "AMD Ryzen 5 PRO 3350GE 16-Core Processor",
        Some("AMD Ryzen 5 PRO 3350GE"),
    ),
    (
        "Intel(R) Celeron(R) D 331 CPU @ 4.38GHz",
        Some("Intel Celeron D 331"),
    ),
    (
        "AMD Ryzen 5 PRO 4655GE with Radeon Graphics",
        Some("AMD Ryzen 5 PRO 4655GE"),
    ),
    (
        "Intel(R) Xeon(R) E7210 CPU @ 1.60GHz",
        Some("Intel Xeon E7210"),
    ),
    (
        "Intel(R) Mobile Celeron(R) 300 CPU @ 2.92GHz",
        Some("Intel Mobile Celeron 300"),
    ),
    ("7th Gen AMD PRO A8-9600 APU with Radeon Graphics", None),
    ("AMD Athlon II X2 270", Some("AMD Athlon II X2 270")),
    (
        "AMD Ryzen 7 5800U with Radeon Graphics",
        Some("AMD Ryzen 7 5800U"),
    ),
    (
        "Intel(R) Xeon(R) X3220 CPU @ 2.94GHz",
        Some("Intel Xeon X3220"),
    ),
    ("AMD A6-6420K Processor", None),
    (
        "Intel(R) Core(TM) i5 processor 14501TE CPU @ 2.58GHz",
        Some("Intel Core i5 processor 14501TE"),
    ),
    ("AMD 7th Gen A9-9420", Some("AMD 7th Gen A9-9420 APU")),
    ("Intel Core i9-10940X", Some("Intel Core i9-10940X")),
    ("Intel Xeon E5-1660", Some("Intel Xeon E5-1660")),
    ("Intel Xeon E5-2658A", Some("Intel Xeon E5-2658A v3")),
    ("Intel Xeon E7-4880", Some("Intel Xeon E7-4880 v2")),
    ("Intel Xeon E3-1270", Some("Intel Xeon E3-1270")),
    ("Intel Xeon E7-4850", Some("Intel Xeon E7-4850")),
    ("Intel Xeon E3-1290", Some("Intel Xeon E3-1290")),
    ("Intel Xeon E3-1275", Some("Intel Xeon E3-1275")),
    ("Intel Xeon E7-8857", Some("Intel Xeon E7-8857 v2")),
    ("Intel Xeon", None),
    ("AMD Ryzen 7", None),
    ("Intel Pentium 4 HT", None),
    ("AMD Phenom II X4", None),
    ("AMD Athlon", None),
    ("AMD Ryzen 7 PRO", None),
    ("Intel Xeon MP 7030", None),
    ("Intel Celeron", None),
    ("Intel Core", None),
    ("Intel Xeon", None),
    ("A10-6700", Some("A10-6700")),
    (
        "AMD RYZEN THREADRIPPER PRO 5955WX",
        Some("AMD Ryzen Threadripper PRO 5955WX"),
    ),
    ("INTEL XEON PHI 7235", Some("Intel Xeon Phi 7235")),
    ("AMD RYZEN 7 PRO 4750G", Some("AMD Ryzen 7 PRO 4750G")),
    ("6386 SE", Some("6386 SE")),
    ("i5-4210M", Some("Intel Core i5-4210M")),
    ("E-2356G", Some("Intel Xeon E-2356G")),
    ("6426Y Intel", Some("Intel Xeon Gold 6426Y")),
    ("B925C", Some("Intel Pentium B925C")),
    ("G870", Some("Intel Pentium G870")),
    ("Intel A4-4000 AMD", Some("AMD A4-4000")),
    ("i5-8269U", Some("Intel Core i5-8269U")),
    ("i7-7567U Intel Core", Some("Intel Core i7-7567U")),
    ("AMD v2 Intel Phenom", None),
    ("APU AMD Opteron HT", None),
    ("A8-8650B X3 Core", None),
    ("AMD Intel E3-1240 Atom", None),
    ("AMD", None),
];

/// rapidfuzz 3.14.6 `fuzz.token_set_ratio(a, b)` on names of the table after
/// `utils.default_process`.
const RAPIDFUZZ_TOKEN_SET: &[(&str, &str, f64)] = &[
    (
        "intel core i5 6350hq",
        "intel xeon gold 6252n",
        53.65853658536585,
    ),
    (
        "intel xeon platinum 8375c",
        "intel xeon platinum 8280m",
        86.36363636363636,
    ),
    ("amd opteron 2350 he", "intel atom z670", 29.411764705882348),
    (
        "intel xeon platinum 8461v",
        "intel core 2 extreme qx9770",
        42.30769230769231,
    ),
    (
        "intel core i3 3220",
        "amd phenom ii x4 955  125w",
        27.906976744186053,
    ),
    (
        "amd athlon ii x2 250u",
        "intel xeon e3 1285l v2",
        41.86046511627907,
    ),
    ("intel xeon e3 1505m v6", "amd epyc 7763", 22.85714285714286),
    ("intel core i7 13700e", "amd athlon ii x4 630", 35.0),
    (
        "intel pentium dual core e2140",
        "amd ryzen 5 pro 3400ge",
        27.450980392156865,
    ),
    ("a4 6320", "intel core i3 6102e", 23.07692307692308),
    (
        "intel pentium iii 866",
        "intel pentium g2030t",
        78.78787878787878,
    ),
    ("amd phenom ii 565", "amd a8 pro 7600b", 54.54545454545455),
    ("amd a8 3800", "intel core i9 10900", 26.66666666666667),
    (
        "intel xeon w 2223",
        "intel core i5 750s",
        45.714285714285715,
    ),
    ("intel xeon l3403", "intel core i3 1115g4", 50.0),
    ("intel xeon e5 2698 v3", "intel celeron g1820", 50.0),
    ("amd a4 pro 3340b", "intel core i5 2405s", 28.57142857142857),
    ("6378", "amd e 350", 15.384615384615387),
    ("amd opteron 4334", "apple m3 ultra", 33.33333333333333),
    (
        "intel xeon gold 6148",
        "amd 7th gen fx 9800p apu",
        36.36363636363637,
    ),
    ("intel atom c3708", "intel pentium b980", 47.61904761904762),
    (
        "intel core i3 4370",
        "intel core 2 duo t6900",
        71.42857142857143,
    ),
    ("amd ryzen 7 3780u", "amd a6 6400b", 41.37931034482759),
    (
        "intel core i7 10750h",
        "intel core i5 3380m",
        71.7948717948718,
    ),
    (
        "intel core i7 4980hq",
        "amd ryzen 5 1500x",
        27.02702702702703,
    ),
];

#[test]
fn same_row_as_codecarbon() {
    let mut wrong = Vec::new();
    for &(brand, want) in CODECARBON_3_3_2 {
        let got = lookup(brand).map(|m| m.row.name);
        if got != want {
            wrong.push(format!("{brand:?}: carbontop {got:?}, CodeCarbon {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn token_set_ratio_as_rapidfuzz() {
    for &(a, b, want) in RAPIDFUZZ_TOKEN_SET {
        let got = token_set_ratio(a, b, 0.0);
        assert!((got - want).abs() < 1e-9, "{a:?} / {b:?}: {got} != {want}");
    }
}
