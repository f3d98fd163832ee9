//! Masking of personal data for lists, logs and exports (PIPL: minimum necessary).
//! Seeing data in full is a permission; these functions give the default view.

/// `13812345678` → `138****5678`. Short values keep only their last two characters.
pub fn phone(p: &str) -> String {
    let chars: Vec<char> = p.chars().collect();
    if chars.len() >= 7 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
    } else {
        tail_only(&chars, 2)
    }
}

/// `110105199001011234` → `110***********1234`.
pub fn id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() >= 8 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
    } else {
        tail_only(&chars, 1)
    }
}

/// `张三` → `张*`, `欧阳明月` → `欧***`: the surname stays, the given name is hidden.
pub fn name(n: &str) -> String {
    let mut chars = n.chars();
    match chars.next() {
        Some(first) => {
            let rest = chars.count();
            format!("{first}{}", "*".repeat(rest.max(1)))
        }
        None => String::new(),
    }
}

fn tail_only(chars: &[char], keep: usize) -> String {
    let keep = keep.min(chars.len());
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("{}{tail}", "*".repeat(chars.len() - keep))
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_keep_only_what_identifies_loosely() {
        assert_eq!(super::phone("13812345678"), "138****5678");
        assert_eq!(super::phone("12345"), "***45");
        assert_eq!(super::id_number("11010519900101123X"), "110***********123X");
        assert_eq!(super::name("张三"), "张*");
        assert_eq!(super::name("欧阳明月"), "欧***");
        assert_eq!(super::name("王"), "王*");
    }
}
