//! Plain-text tables, right-aligned numbers.

/// A table: header and rows of cells.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut w = vec![0; n];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let is_num = |c: &str| {
            c.chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_digit() || ch == '-')
        };
        // A column of numbers is right-aligned, its header included.
        let num_col: Vec<bool> = (0..n)
            .map(|i| {
                i > 0
                    && self
                        .rows
                        .iter()
                        .any(|r| r.get(i).is_some_and(|c| is_num(c)))
            })
            .collect();
        let mut out = String::new();
        let line = |out: &mut String, r: &Vec<String>| {
            for (i, c) in r.iter().enumerate().take(n) {
                let numeric = num_col[i] && (is_num(c) || c.is_empty() || r == &self.header);
                if i > 0 {
                    out.push_str("  ");
                }
                if numeric {
                    out.push_str(&format!("{c:>width$}", width = w[i]));
                } else {
                    out.push_str(&format!("{c:<width$}", width = w[i]));
                }
            }
            while out.ends_with(' ') {
                out.pop();
            }
            out.push('\n');
        };
        line(&mut out, &self.header);
        for r in &self.rows {
            line(&mut out, r);
        }
        out
    }
}
